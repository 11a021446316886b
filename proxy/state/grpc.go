package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/errs"
)

// grpcErr logs and converts a block error to a gRPC status.
func (a *API) grpcErr(method string, err error) error {
	a.log.Debug("state request failed", "method", method, "err", err)
	return errs.GRPC(err)
}

// GetState reads one key; a missing key is an empty response.
func (a *API) GetState(ctx context.Context, in *runtimev1.GetStateRequest) (*runtimev1.GetStateResponse, error) {
	t, err := a.resolve(in.GetStoreName())
	if err != nil {
		return nil, a.grpcErr("GetState", err)
	}
	k, err := t.key(in.GetKey())
	if err != nil {
		return nil, a.grpcErr("GetState", err)
	}
	resp, err := t.get(ctx, in.GetKey(), &componentsv1.GetRequest{
		Key: k, Metadata: in.GetMetadata(), Consistency: consistencyFromCommon(in.GetConsistency()),
	})
	if err != nil {
		return nil, a.grpcErr("GetState", err)
	}
	return &runtimev1.GetStateResponse{Data: resp.GetData(), Etag: resp.GetEtag().GetValue(), Metadata: resp.GetMetadata()}, nil
}

// GetBulkState reads many keys.
func (a *API) GetBulkState(ctx context.Context, in *runtimev1.GetBulkStateRequest) (*runtimev1.GetBulkStateResponse, error) {
	t, err := a.resolve(in.GetStoreName())
	if err != nil {
		return nil, a.grpcErr("GetBulkState", err)
	}
	items, err := t.bulkGet(ctx, in.GetKeys(), in.GetMetadata(), int64(in.GetParallelism()))
	if err != nil {
		return nil, a.grpcErr("GetBulkState", err)
	}
	out := &runtimev1.GetBulkStateResponse{Items: make([]*runtimev1.BulkStateItem, len(items))}
	for i, it := range items {
		bi := &runtimev1.BulkStateItem{Key: it.Key, Data: it.Data, Metadata: it.Metadata, Error: it.Error}
		if it.ETag != nil {
			bi.Etag = *it.ETag
		}
		out.Items[i] = bi
	}
	return out, nil
}

// jsonContentType is the metadata contentType under which gRPC SaveState
// checks that the value is JSON (Dapr decodes it).
const jsonContentType = "application/json"

// SaveState stores the raw bytes of each item.
func (a *API) SaveState(ctx context.Context, in *runtimev1.SaveStateRequest) (*emptypb.Empty, error) {
	t, err := a.resolve(in.GetStoreName())
	if err != nil {
		return nil, a.grpcErr("SaveState", err)
	}
	reqs := make([]*componentsv1.SetRequest, len(in.GetStates()))
	for i, s := range in.GetStates() {
		if s.GetKey() == "" {
			return nil, a.grpcErr("SaveState", errs.BadRequest.New("state key cannot be empty"))
		}
		req, err := t.setFromItem(s)
		if err != nil {
			return nil, a.grpcErr("SaveState", err)
		}
		if s.GetMetadata()["contentType"] == jsonContentType && !json.Valid(s.GetValue()) {
			return nil, a.grpcErr("SaveState", errs.BadRequest.New(fmt.Sprintf("value of key %s is not valid JSON (metadata contentType is %s)", s.GetKey(), jsonContentType)))
		}
		reqs[i] = req
	}
	if err := t.save(ctx, reqs); err != nil {
		return nil, a.grpcErr("SaveState", err)
	}
	return &emptypb.Empty{}, nil
}

func (t *target) setFromItem(s *commonv1.StateItem) (*componentsv1.SetRequest, error) {
	k, err := t.key(s.GetKey())
	if err != nil {
		return nil, err
	}
	req := &componentsv1.SetRequest{Key: k, Value: s.GetValue(), Metadata: s.GetMetadata(), Options: optionsFromCommon(s.GetOptions())}
	if e := s.GetEtag(); e != nil {
		req.Etag = &componentsv1.Etag{Value: e.GetValue()}
	}
	return req, nil
}

func (t *target) deleteFromItem(s *commonv1.StateItem) (*componentsv1.DeleteRequest, error) {
	k, err := t.key(s.GetKey())
	if err != nil {
		return nil, err
	}
	req := &componentsv1.DeleteRequest{Key: k, Metadata: s.GetMetadata(), Options: optionsFromCommon(s.GetOptions())}
	if e := s.GetEtag(); e != nil {
		req.Etag = &componentsv1.Etag{Value: e.GetValue()}
	}
	return req, nil
}

// DeleteState deletes one key.
func (a *API) DeleteState(ctx context.Context, in *runtimev1.DeleteStateRequest) (*emptypb.Empty, error) {
	t, err := a.resolve(in.GetStoreName())
	if err != nil {
		return nil, a.grpcErr("DeleteState", err)
	}
	k, err := t.key(in.GetKey())
	if err != nil {
		return nil, a.grpcErr("DeleteState", err)
	}
	req := &componentsv1.DeleteRequest{Key: k, Metadata: in.GetMetadata(), Options: optionsFromCommon(in.GetOptions())}
	if e := in.GetEtag(); e != nil {
		req.Etag = &componentsv1.Etag{Value: e.GetValue()}
	}
	if err := t.deleteOne(ctx, in.GetKey(), req); err != nil {
		return nil, a.grpcErr("DeleteState", err)
	}
	return &emptypb.Empty{}, nil
}

// DeleteBulkState deletes many keys.
func (a *API) DeleteBulkState(ctx context.Context, in *runtimev1.DeleteBulkStateRequest) (*emptypb.Empty, error) {
	t, err := a.resolve(in.GetStoreName())
	if err != nil {
		return nil, a.grpcErr("DeleteBulkState", err)
	}
	reqs := make([]*componentsv1.DeleteRequest, len(in.GetStates()))
	for i, s := range in.GetStates() {
		if reqs[i], err = t.deleteFromItem(s); err != nil {
			return nil, a.grpcErr("DeleteBulkState", err)
		}
	}
	if err := t.deleteMany(ctx, reqs); err != nil {
		return nil, a.grpcErr("DeleteBulkState", err)
	}
	return &emptypb.Empty{}, nil
}

// ExecuteStateTransaction runs upserts and deletes in one plugin transaction.
func (a *API) ExecuteStateTransaction(ctx context.Context, in *runtimev1.ExecuteStateTransactionRequest) (*emptypb.Empty, error) {
	t, err := a.resolve(in.GetStoreName())
	if err != nil {
		return nil, a.grpcErr("ExecuteStateTransaction", err)
	}
	if !t.HasFeature(FeatureTransactional) {
		return nil, a.grpcErr("ExecuteStateTransaction", errs.StateStoreNotSupported.New(t.Name, "transactions"))
	}
	ops := make([]*componentsv1.TransactionalStateOperation, len(in.GetOperations()))
	for i, op := range in.GetOperations() {
		switch op.GetOperationType() {
		case opUpsert:
			req, err := t.setFromItem(op.GetRequest())
			if err != nil {
				return nil, a.grpcErr("ExecuteStateTransaction", err)
			}
			ops[i] = &componentsv1.TransactionalStateOperation{Request: &componentsv1.TransactionalStateOperation_Set{Set: req}}
		case opDelete:
			req, err := t.deleteFromItem(op.GetRequest())
			if err != nil {
				return nil, a.grpcErr("ExecuteStateTransaction", err)
			}
			ops[i] = &componentsv1.TransactionalStateOperation{Request: &componentsv1.TransactionalStateOperation_Delete{Delete: req}}
		default:
			return nil, a.grpcErr("ExecuteStateTransaction", errs.NotSupportedStateOp.New(op.GetOperationType()))
		}
	}
	if err := a.transact(ctx, t, ops, in.GetMetadata()); err != nil {
		return nil, a.grpcErr("ExecuteStateTransaction", err)
	}
	return &emptypb.Empty{}, nil
}

// QueryStateAlpha1 runs a state query (JSON query text).
func (a *API) QueryStateAlpha1(ctx context.Context, in *runtimev1.QueryStateRequest) (*runtimev1.QueryStateResponse, error) {
	resp, err := a.runQuery(ctx, in.GetStoreName(), []byte(in.GetQuery()), in.GetMetadata())
	if err != nil {
		return nil, a.grpcErr("QueryStateAlpha1", err)
	}
	out := &runtimev1.QueryStateResponse{}
	if len(resp.GetItems()) == 0 {
		return out, nil
	}
	out.Token, out.Metadata = resp.GetToken(), resp.GetMetadata()
	out.Results = make([]*runtimev1.QueryStateItem, len(resp.GetItems()))
	for i, it := range resp.GetItems() {
		out.Results[i] = &runtimev1.QueryStateItem{Key: originalKey(it.GetKey()), Data: it.GetData(), Etag: it.GetEtag().GetValue(), Error: it.GetError()}
	}
	return out, nil
}

// queryText is Dapr's query language document.
type queryText struct {
	Filter map[string]json.RawMessage `json:"filter"`
	Sort   []struct {
		Key   string `json:"key"`
		Order string `json:"order"`
	} `json:"sort"`
	Page struct {
		Limit int64  `json:"limit"`
		Token string `json:"token"`
	} `json:"page"`
}

// runQuery is the query shared by HTTP and gRPC: the store must advertise
// QUERY_API; the filter goes to the plugin as JSON, one Any per top-level
// operator, as daprd sends it.
func (a *API) runQuery(ctx context.Context, storeName string, text []byte, md map[string]string) (*componentsv1.QueryResponse, error) {
	t, err := a.resolve(storeName)
	if err != nil {
		return nil, err
	}
	if !t.HasFeature(FeatureQueryAPI) {
		return nil, errs.StateStoreNotSupported.New(t.Name, "query")
	}
	var qt queryText
	if err := json.Unmarshal(text, &qt); err != nil {
		return nil, errs.StateQuery.New(t.Name, "failed to parse JSON query body: "+err.Error())
	}
	q := &componentsv1.Query{
		Filter:     make(map[string]*anypb.Any, len(qt.Filter)),
		Pagination: &componentsv1.Pagination{Limit: qt.Page.Limit, Token: qt.Page.Token},
	}
	for op, v := range qt.Filter {
		q.Filter[op] = &anypb.Any{Value: v}
	}
	for _, s := range qt.Sort {
		order := componentsv1.Sorting_ASC
		if strings.EqualFold(s.Order, "DESC") {
			order = componentsv1.Sorting_DESC
		}
		q.Sort = append(q.Sort, &componentsv1.Sorting{Key: s.Key, Order: order})
	}
	return t.query(ctx, q, md)
}
