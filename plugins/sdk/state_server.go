package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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

	newStore func() StateStore
	probe    StateStore // never Init'ed; tells which capabilities the type has
	logger   *slog.Logger

	mu        sync.RWMutex
	instances map[string]StateStore
}

func newStateServer(newStore func() StateStore, logger *slog.Logger) (*stateServer, error) {
	probe := newStore()
	if probe == nil {
		return nil, errors.New("state store factory returned nil")
	}
	return &stateServer{newStore: newStore, probe: probe, logger: logger, instances: map[string]StateStore{}}, nil
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

func (s *stateServer) closeAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, st := range s.instances {
		if c, ok := st.(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: %w", name, err))
			}
		}
		delete(s.instances, name)
	}
	return errors.Join(errs...)
}

func instanceName(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(InstanceMetadataKey); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *stateServer) instance(ctx context.Context) (StateStore, error) {
	name := instanceName(ctx)
	s.mu.RLock()
	st, ok := s.instances[name]
	s.mu.RUnlock()
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition,
			"state store instance %q is not initialised: call Init first (instance named by gRPC metadata %s)",
			name, InstanceMetadataKey)
	}
	return st, nil
}

func (s *stateServer) Init(ctx context.Context, req *componentsv1.InitRequest) (*componentsv1.InitResponse, error) {
	name := instanceName(ctx)
	st := s.newStore()
	if st == nil {
		return nil, status.Error(codes.Internal, "state store factory returned nil")
	}
	md := Metadata(req.GetMetadata().GetProperties())
	if md == nil {
		md = Metadata{}
	}
	if err := st.Init(ctx, md); err != nil {
		if c, ok := st.(Closer); ok {
			_ = c.Close()
		}
		s.logger.Error("init failed", "instance", name, "err", err)
		return nil, wireError(fmt.Errorf("init %q: %w", name, err))
	}
	s.mu.Lock()
	old := s.instances[name]
	s.instances[name] = st
	s.mu.Unlock()
	if c, ok := old.(Closer); ok && old != nil {
		if err := c.Close(); err != nil {
			s.logger.Warn("closing replaced instance", "instance", name, "err", err)
		}
	}
	s.logger.Info("initialised", "instance", name, "features", StateFeatures(st))
	return &componentsv1.InitResponse{}, nil
}

func (s *stateServer) Features(ctx context.Context, _ *componentsv1.FeaturesRequest) (*componentsv1.FeaturesResponse, error) {
	st := s.probe
	s.mu.RLock()
	if inst, ok := s.instances[instanceName(ctx)]; ok {
		st = inst
	}
	s.mu.RUnlock()
	return &componentsv1.FeaturesResponse{Features: StateFeatures(st)}, nil
}

func (s *stateServer) Ping(ctx context.Context, _ *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	st, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := st.(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return nil, wireError(fmt.Errorf("ping: %w", err))
		}
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
