package pubsub

import (
	"context"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/errs"
)

func grpcTrace(ctx context.Context) trace {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return trace{parent: first("traceparent"), state: first("tracestate")}
}

// PublishEvent publishes one event (Dapr service RPC).
func (a *API) PublishEvent(ctx context.Context, in *runtimev1.PublishEventRequest) (*emptypb.Empty, error) {
	md := in.GetMetadata()
	if md == nil {
		md = map[string]string{}
	}
	ev := event{Data: in.GetData(), ContentType: in.GetDataContentType(), Metadata: md}
	if err := a.publish(ctx, in.GetPubsubName(), in.GetTopic(), ev, grpcTrace(ctx)); err != nil {
		a.log.Debug("PublishEvent failed", "pubsub", in.GetPubsubName(), "topic", in.GetTopic(), "err", err)
		return nil, errs.GRPC(err)
	}
	return &emptypb.Empty{}, nil
}

// BulkPublishEventAlpha1 publishes many events. Entries the broker did not
// take come back in FailedEntries with a nil error (the answer Dapr's API
// documents and the Go SDK reads); request-level problems are errors.
func (a *API) BulkPublishEventAlpha1(ctx context.Context, in *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	md := in.GetMetadata()
	if md == nil {
		md = map[string]string{}
	}
	evs := make([]event, len(in.GetEntries()))
	for i, e := range in.GetEntries() {
		evs[i] = event{EntryID: e.GetEntryId(), Data: e.GetEvent(), ContentType: e.GetContentType(), Metadata: mergeMetadata(md, e.GetMetadata())}
	}
	failed, err := a.bulkPublish(ctx, in.GetPubsubName(), in.GetTopic(), md, evs, grpcTrace(ctx))
	if err != nil {
		return nil, errs.GRPC(err)
	}
	resp := &runtimev1.BulkPublishResponse{FailedEntries: make([]*runtimev1.BulkPublishResponseFailedEntry, 0, len(failed))}
	for _, f := range failed {
		resp.FailedEntries = append(resp.FailedEntries, &runtimev1.BulkPublishResponseFailedEntry{EntryId: f.EntryID, Error: f.Error})
	}
	return resp, nil
}
