package sdk

import (
	"context"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// merger implements merging: batched Gets of one instance run as one
// BulkGet, and batched unconditional Sets and Deletes (no etag, last-write)
// as one BulkSet or BulkDelete, when the store has the bulk capability.
// Conditional writes always run on their own, so an etag conflict is
// reported to the call that caused it and to no other.
func (s *stateServer) merger(method string) merger {
	switch method {
	case componentsv1.StateStore_Get_FullMethodName:
		return s.mergeGets
	case componentsv1.StateStore_Set_FullMethodName:
		return s.mergeSets
	case componentsv1.StateStore_Delete_FullMethodName:
		return s.mergeDeletes
	}
	return nil
}

func (s *stateServer) mergeGets(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, false
	}
	bg, ok := st.(BulkGetter)
	if !ok {
		return nil, false
	}
	reqs := make([]*GetRequest, len(raws))
	for i, raw := range raws {
		var r componentsv1.GetRequest
		if proto.Unmarshal(raw, &r) != nil {
			return nil, false
		}
		reqs[i] = fromGetRequest(&r)
	}
	items, err := bg.BulkGet(ctx, reqs)
	if err != nil || len(items) != len(reqs) {
		return nil, false
	}
	out := make([]*ocomponentsv1.UnaryResult, len(items))
	for i, it := range items {
		if it.Key != reqs[i].Key {
			return nil, false // not in request order: let each Get run
		}
		if it.Error != "" {
			out[i] = failed(status.New(codes.Internal, it.Error))
			continue
		}
		resp := &componentsv1.GetResponse{}
		if it.Found {
			resp.Data, resp.Etag, resp.Metadata, resp.ContentType = it.Data, toETag(it.ETag), it.Metadata, it.ContentType
		}
		out[i] = succeeded(resp)
	}
	return out, true
}

func (s *stateServer) mergeSets(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, false
	}
	bs, ok := st.(BulkSetter)
	if !ok {
		return nil, false
	}
	return mergeUnconditional(raws, func(raw []byte) (*SetRequest, bool) {
		var r componentsv1.SetRequest
		if proto.Unmarshal(raw, &r) != nil {
			return nil, false
		}
		req := fromSetRequest(&r)
		return req, req.ETag == nil && req.Concurrency != FirstWrite
	}, func(reqs []*SetRequest) error { return bs.BulkSet(ctx, reqs) }, &componentsv1.SetResponse{})
}

func (s *stateServer) mergeDeletes(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, false
	}
	bd, ok := st.(BulkDeleter)
	if !ok {
		return nil, false
	}
	return mergeUnconditional(raws, func(raw []byte) (*DeleteRequest, bool) {
		var r componentsv1.DeleteRequest
		if proto.Unmarshal(raw, &r) != nil {
			return nil, false
		}
		req := fromDeleteRequest(&r)
		return req, req.ETag == nil && req.Concurrency != FirstWrite
	}, func(reqs []*DeleteRequest) error { return bd.BulkDelete(ctx, reqs) }, &componentsv1.DeleteResponse{})
}

// mergeUnconditional decodes every write (decline unless each decodes and
// is unconditional) and runs them as one bulk call. A bulk call that fails
// declines too, so each write then runs alone and gets its own error.
func mergeUnconditional[T any](raws [][]byte, decode func([]byte) (T, bool), bulk func([]T) error, reply proto.Message) ([]*ocomponentsv1.UnaryResult, bool) {
	reqs := make([]T, len(raws))
	for i, raw := range raws {
		req, ok := decode(raw)
		if !ok {
			return nil, false
		}
		reqs[i] = req
	}
	if bulk(reqs) != nil {
		return nil, false
	}
	return same(len(reqs), reply), true
}

// same is n results all answering msg.
func same(n int, msg proto.Message) []*ocomponentsv1.UnaryResult {
	r := succeeded(msg)
	out := make([]*ocomponentsv1.UnaryResult, n)
	for i := range out {
		out[i] = r
	}
	return out
}
