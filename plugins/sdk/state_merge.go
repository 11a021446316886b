package sdk

import (
	"context"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	bg, ok := bulkOf[BulkGetter](s.instance(ctx))
	if !ok {
		return nil, false
	}
	return mergeAll(raws,
		decodeAs(func(r *componentsv1.GetRequest) (*GetRequest, bool) { return fromGetRequest(r), true }),
		func(reqs []*GetRequest) ([]BulkItem, error) { return bg.BulkGet(ctx, reqs) },
		func(req *GetRequest, it BulkItem) (*ocomponentsv1.UnaryResult, bool) {
			switch {
			case it.Key != req.Key:
				return nil, false // not in request order: let each Get run
			case it.Error != "":
				return failed(status.New(codes.Internal, it.Error)), true
			}
			resp := &componentsv1.GetResponse{}
			if it.Found {
				resp.Data, resp.Etag, resp.Metadata, resp.ContentType = it.Data, toETag(it.ETag), it.Metadata, it.ContentType
			}
			return succeeded(resp), true
		})
}

func (s *stateServer) mergeSets(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	bs, ok := bulkOf[BulkSetter](s.instance(ctx))
	if !ok {
		return nil, false
	}
	done := succeeded(&componentsv1.SetResponse{})
	return mergeAll(raws,
		decodeAs(func(r *componentsv1.SetRequest) (*SetRequest, bool) {
			req := fromSetRequest(r)
			return req, req.ETag == nil && req.Concurrency != FirstWrite
		}),
		func(reqs []*SetRequest) ([]struct{}, error) {
			return make([]struct{}, len(reqs)), bs.BulkSet(ctx, reqs)
		},
		func(*SetRequest, struct{}) (*ocomponentsv1.UnaryResult, bool) { return done, true })
}

func (s *stateServer) mergeDeletes(ctx context.Context, raws [][]byte) ([]*ocomponentsv1.UnaryResult, bool) {
	bd, ok := bulkOf[BulkDeleter](s.instance(ctx))
	if !ok {
		return nil, false
	}
	done := succeeded(&componentsv1.DeleteResponse{})
	return mergeAll(raws,
		decodeAs(func(r *componentsv1.DeleteRequest) (*DeleteRequest, bool) {
			req := fromDeleteRequest(r)
			return req, req.ETag == nil && req.Concurrency != FirstWrite
		}),
		func(reqs []*DeleteRequest) ([]struct{}, error) {
			return make([]struct{}, len(reqs)), bd.BulkDelete(ctx, reqs)
		},
		func(*DeleteRequest, struct{}) (*ocomponentsv1.UnaryResult, bool) { return done, true })
}
