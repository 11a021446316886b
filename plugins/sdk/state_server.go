package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Feature names advertised to the host, as Dapr spells them.
const (
	FeatureETag          = "ETAG"
	FeatureTransactional = "TRANSACTIONAL"
	FeatureQueryAPI      = "QUERY_API"
	FeatureTTL           = "TTL"
)

// StateFeatures derives the features a store advertises from the optional
// interfaces it implements, so they cannot lie.
func StateFeatures(s StateStore) []string {
	f := []string{}
	if _, ok := s.(ETagger); ok {
		f = append(f, FeatureETag)
	}
	if _, ok := s.(Transactioner); ok {
		f = append(f, FeatureTransactional)
	}
	if _, ok := s.(Querier); ok {
		f = append(f, FeatureQueryAPI)
	}
	if _, ok := s.(TTLer); ok {
		f = append(f, FeatureTTL)
	}
	return f
}

// stateServer implements the StateStore, TransactionalStateStore and
// QueriableStateStore services over many instances, one per
// x-component-instance value, each created by newStore at Init.
type stateServer struct {
	componentsv1.UnimplementedStateStoreServer
	componentsv1.UnimplementedTransactionalStateStoreServer
	componentsv1.UnimplementedQueriableStateStoreServer

	probe     StateStore // never Init'ed; tells which capabilities the type has
	instances *instanceSet[StateStore]
}

func newStateServer(newStore func() StateStore, logger *slog.Logger) (*stateServer, error) {
	set, err := newInstanceSet("state store", newStore, logger)
	if err != nil {
		return nil, err
	}
	return &stateServer{probe: newStore(), instances: set}, nil
}

func (s *stateServer) register(r grpc.ServiceRegistrar) {
	componentsv1.RegisterStateStoreServer(r, s)
	if _, ok := s.probe.(Transactioner); ok {
		componentsv1.RegisterTransactionalStateStoreServer(r, s)
	}
	if _, ok := s.probe.(Querier); ok {
		componentsv1.RegisterQueriableStateStoreServer(r, s)
	}
}

func (s *stateServer) closeAll() error { return s.instances.closeAll() }

func (s *stateServer) instance(ctx context.Context) (StateStore, error) { return s.instances.get(ctx) }

func (s *stateServer) Init(ctx context.Context, req *componentsv1.InitRequest) (*componentsv1.InitResponse, error) {
	err := s.instances.init(ctx, req.GetMetadata().GetProperties(), func(st StateStore, md Metadata) error { return st.Init(ctx, md) })
	if err != nil {
		return nil, err
	}
	return &componentsv1.InitResponse{}, nil
}

func (s *stateServer) Features(ctx context.Context, _ *componentsv1.FeaturesRequest) (*componentsv1.FeaturesResponse, error) {
	st := s.probe
	if inst, ok := s.instances.peek(ctx); ok {
		st = inst
	}
	return &componentsv1.FeaturesResponse{Features: StateFeatures(st)}, nil
}

func (s *stateServer) Ping(ctx context.Context, _ *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	if err := s.instances.ping(ctx); err != nil {
		return nil, err
	}
	return &componentsv1.PingResponse{}, nil
}

func (s *stateServer) Get(ctx context.Context, req *componentsv1.GetRequest) (*componentsv1.GetResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := st.Get(ctx, fromGetRequest(req))
	if err != nil {
		return nil, wireError(err)
	}
	if resp == nil || !resp.Found {
		return &componentsv1.GetResponse{}, nil
	}
	return &componentsv1.GetResponse{
		Data:        resp.Data,
		Etag:        toETag(resp.ETag),
		Metadata:    resp.Metadata,
		ContentType: resp.ContentType,
	}, nil
}

func (s *stateServer) Set(ctx context.Context, req *componentsv1.SetRequest) (*componentsv1.SetResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Set(ctx, fromSetRequest(req)); err != nil {
		return nil, wireError(err)
	}
	return &componentsv1.SetResponse{}, nil
}

func (s *stateServer) Delete(ctx context.Context, req *componentsv1.DeleteRequest) (*componentsv1.DeleteResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Delete(ctx, fromDeleteRequest(req)); err != nil {
		return nil, wireError(err)
	}
	return &componentsv1.DeleteResponse{}, nil
}

func (s *stateServer) BulkGet(ctx context.Context, req *componentsv1.BulkGetRequest) (*componentsv1.BulkGetResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	reqs := make([]*GetRequest, len(req.GetItems()))
	for i, it := range req.GetItems() {
		reqs[i] = fromGetRequest(it)
	}
	var items []BulkItem
	if bg, ok := st.(BulkGetter); ok {
		items, err = bg.BulkGet(ctx, reqs)
		if err != nil {
			return nil, wireError(err)
		}
	} else {
		items = make([]BulkItem, len(reqs))
		for i, r := range reqs {
			items[i] = BulkItem{Key: r.Key}
			resp, err := st.Get(ctx, r)
			switch {
			case err != nil:
				items[i].Error = err.Error()
			case resp != nil && resp.Found:
				items[i] = BulkItem{Key: r.Key, Found: true, Data: resp.Data, ETag: resp.ETag, Metadata: resp.Metadata, ContentType: resp.ContentType}
			}
		}
	}
	out := &componentsv1.BulkGetResponse{Items: make([]*componentsv1.BulkStateItem, len(items))}
	for i, it := range items {
		bi := &componentsv1.BulkStateItem{Key: it.Key, Error: it.Error}
		if it.Found {
			bi.Data, bi.Etag, bi.Metadata, bi.ContentType = it.Data, toETag(it.ETag), it.Metadata, it.ContentType
		}
		out.Items[i] = bi
	}
	return out, nil
}

func (s *stateServer) BulkSet(ctx context.Context, req *componentsv1.BulkSetRequest) (*componentsv1.BulkSetResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	reqs := make([]*SetRequest, len(req.GetItems()))
	for i, it := range req.GetItems() {
		reqs[i] = fromSetRequest(it)
	}
	if bs, ok := st.(BulkSetter); ok {
		err = bs.BulkSet(ctx, reqs)
	} else {
		var errs []error
		for _, r := range reqs {
			if err := st.Set(ctx, r); err != nil {
				errs = append(errs, fmt.Errorf("key %q: %w", r.Key, err))
			}
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		return nil, wireError(err)
	}
	return &componentsv1.BulkSetResponse{}, nil
}

func (s *stateServer) BulkDelete(ctx context.Context, req *componentsv1.BulkDeleteRequest) (*componentsv1.BulkDeleteResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	reqs := make([]*DeleteRequest, len(req.GetItems()))
	for i, it := range req.GetItems() {
		reqs[i] = fromDeleteRequest(it)
	}
	if bd, ok := st.(BulkDeleter); ok {
		err = bd.BulkDelete(ctx, reqs)
	} else {
		var errs []error
		for _, r := range reqs {
			if err := st.Delete(ctx, r); err != nil {
				errs = append(errs, fmt.Errorf("key %q: %w", r.Key, err))
			}
		}
		err = errors.Join(errs...)
	}
	if err != nil {
		return nil, wireError(err)
	}
	return &componentsv1.BulkDeleteResponse{}, nil
}

func (s *stateServer) Transact(ctx context.Context, req *componentsv1.TransactionalStateRequest) (*componentsv1.TransactionalStateResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	tx, ok := st.(Transactioner)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "state store does not support transactions")
	}
	ops := make([]TxOp, len(req.GetOperations()))
	for i, op := range req.GetOperations() {
		switch {
		case op.GetSet() != nil:
			ops[i].Set = fromSetRequest(op.GetSet())
		case op.GetDelete() != nil:
			ops[i].Delete = fromDeleteRequest(op.GetDelete())
		default:
			return nil, status.Errorf(codes.InvalidArgument, "transaction operation %d: neither set nor delete", i)
		}
	}
	if err := tx.Transact(ctx, ops, req.GetMetadata()); err != nil {
		return nil, wireError(err)
	}
	return &componentsv1.TransactionalStateResponse{}, nil
}

func (s *stateServer) Query(ctx context.Context, req *componentsv1.QueryRequest) (*componentsv1.QueryResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	q, ok := st.(Querier)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "state store does not support queries")
	}
	pq := req.GetQuery()
	query := &Query{
		Filter:   make(map[string]json.RawMessage, len(pq.GetFilter())),
		Metadata: req.GetMetadata(),
		Page:     Pagination{Limit: pq.GetPagination().GetLimit(), Token: pq.GetPagination().GetToken()},
	}
	for k, v := range pq.GetFilter() {
		query.Filter[k] = json.RawMessage(v.GetValue())
	}
	for _, so := range pq.GetSort() {
		order := "ASC"
		if so.GetOrder() == componentsv1.Sorting_DESC {
			order = "DESC"
		}
		query.Sort = append(query.Sort, Sorting{Key: so.GetKey(), Order: order})
	}
	resp, err := q.Query(ctx, query)
	if err != nil {
		return nil, wireError(err)
	}
	out := &componentsv1.QueryResponse{}
	if resp == nil {
		return out, nil
	}
	out.Token, out.Metadata = resp.Token, resp.Metadata
	out.Items = make([]*componentsv1.QueryItem, len(resp.Items))
	for i, it := range resp.Items {
		out.Items[i] = &componentsv1.QueryItem{Key: it.Key, Data: it.Data, Etag: toETag(it.ETag), Error: it.Error, ContentType: it.ContentType}
	}
	return out, nil
}

func toETag(v string) *componentsv1.Etag {
	if v == "" {
		return nil
	}
	return &componentsv1.Etag{Value: v}
}

func fromETag(e *componentsv1.Etag) *string {
	if e == nil || e.GetValue() == "" {
		return nil
	}
	v := e.GetValue()
	return &v
}

func concurrencyOf(o *componentsv1.StateOptions) string {
	switch o.GetConcurrency() {
	case componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE:
		return FirstWrite
	case componentsv1.StateOptions_CONCURRENCY_LAST_WRITE:
		return LastWrite
	default:
		return ""
	}
}

func consistencyOf(c componentsv1.StateOptions_StateConsistency) string {
	switch c {
	case componentsv1.StateOptions_CONSISTENCY_EVENTUAL:
		return Eventual
	case componentsv1.StateOptions_CONSISTENCY_STRONG:
		return Strong
	default:
		return ""
	}
}

func fromGetRequest(r *componentsv1.GetRequest) *GetRequest {
	return &GetRequest{Key: r.GetKey(), Metadata: r.GetMetadata(), Consistency: consistencyOf(r.GetConsistency())}
}

func fromSetRequest(r *componentsv1.SetRequest) *SetRequest {
	return &SetRequest{
		Key:         r.GetKey(),
		Value:       r.GetValue(),
		ETag:        fromETag(r.GetEtag()),
		Metadata:    r.GetMetadata(),
		Concurrency: concurrencyOf(r.GetOptions()),
		Consistency: consistencyOf(r.GetOptions().GetConsistency()),
		ContentType: r.GetContentType(),
	}
}

func fromDeleteRequest(r *componentsv1.DeleteRequest) *DeleteRequest {
	return &DeleteRequest{
		Key:         r.GetKey(),
		ETag:        fromETag(r.GetEtag()),
		Metadata:    r.GetMetadata(),
		Concurrency: concurrencyOf(r.GetOptions()),
		Consistency: consistencyOf(r.GetOptions().GetConsistency()),
	}
}
