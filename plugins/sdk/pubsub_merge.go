package sdk

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// merger implements merging: a batch's Publishes on one instance run as one
// BulkPublish per topic when the broker is a BulkPublisher, each message with
// its own metadata and content type, each failed entry reported to its own
// call. A BulkPublish that fails as a whole fails each of its calls (it is
// not re-run call by call: some messages may have gone out, and publishing
// them twice is worse than an error the caller can retry).
func (s *pubsubServer) merger(method string) merger {
	if method == componentsv1.PubSub_Publish_FullMethodName {
		return s.mergePublishes
	}
	return nil
}

func (s *pubsubServer) mergePublishes(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	bp, ok := bulkOf[BulkPublisher](s.instance(ctx))
	if !ok {
		return nil, false
	}
	byTopic := map[string][]int{} // topic → indexes into raws
	var topics []string
	entries := make([]BulkEntry, len(raws))
	for i, raw := range raws {
		var r componentsv1.PublishRequest
		if proto.Unmarshal(raw, &r) != nil || r.GetTopic() == "" {
			return nil, false // the handler reports it
		}
		if _, seen := byTopic[r.GetTopic()]; !seen {
			topics = append(topics, r.GetTopic())
		}
		byTopic[r.GetTopic()] = append(byTopic[r.GetTopic()], i)
		entries[i] = BulkEntry{EntryID: strconv.Itoa(i), Data: r.GetData(), ContentType: r.GetContentType(), Metadata: r.GetMetadata()}
	}
	out := make([]*ocomponentsv1.UnaryResult, len(raws))
	var wg sync.WaitGroup
	for _, topic := range topics {
		wg.Go(func() {
			idx := byTopic[topic]
			group := make([]BulkEntry, len(idx))
			for n, i := range idx {
				group[n] = entries[i]
			}
			failures, err := bp.BulkPublish(ctx, topic, group, nil)
			if err != nil {
				r := errResult(fmt.Errorf("publish to %q: %w", topic, err))
				for _, i := range idx {
					out[i] = r
				}
				return
			}
			ok := succeeded(&componentsv1.PublishResponse{})
			for _, i := range idx {
				out[i] = ok
			}
			for _, f := range failures {
				if i, err := strconv.Atoi(f.EntryID); err == nil && i >= 0 && i < len(out) {
					out[i] = failed(status.Newf(codes.Internal, "publish to %q: %s", topic, f.Error))
				}
			}
		})
	}
	wg.Wait()
	return out, true
}
