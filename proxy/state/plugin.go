package state

import (
	"context"
	"errors"
	"fmt"
	"sync"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/errs"
)

// etagKind classifies a plugin error.
type etagKind int

const (
	notETag etagKind = iota
	etagMismatch
	etagInvalid
)

// pluginError classifies an error from a plugin call, following Dapr's
// pluggable convention: FailedPrecondition (mismatch) or InvalidArgument
// (invalid) carrying exactly one google.rpc.BadRequest detail with exactly one
// field violation on "etag". It returns the message to report: the
// violation's description for etag errors, else the status message (for
// Unavailable, the host's message naming the plugin).
func pluginError(err error) (etagKind, string) {
	st, ok := status.FromError(err)
	if !ok {
		return notETag, err.Error()
	}
	if c := st.Code(); c == codes.FailedPrecondition || c == codes.InvalidArgument {
		if d := st.Details(); len(d) == 1 {
			if br, ok := d[0].(*errdetails.BadRequest); ok {
				if fv := br.GetFieldViolations(); len(fv) == 1 && fv[0].GetField() == "etag" {
					if c == codes.FailedPrecondition {
						return etagMismatch, fv[0].GetDescription()
					}
					return etagInvalid, fv[0].GetDescription()
				}
			}
		}
	}
	return notETag, st.Message()
}

func isUnimplemented(err error) bool { return status.Code(err) == codes.Unimplemented }

// etagRows picks the row for a classified plugin error.
type etagRows struct{ mismatch, invalid, other errs.Row }

var (
	saveRows       = etagRows{errs.StateETagMismatchSave, errs.StateETagInvalidSave, errs.StateSave}
	deleteRows     = etagRows{errs.StateETagMismatchDelete, errs.StateETagInvalidDelete, errs.StateDelete}
	bulkDeleteRows = etagRows{errs.StateETagMismatchDeleteBulk, errs.StateETagInvalidDeleteBulk, errs.StateDeleteBulk}
	txRows         = etagRows{errs.StateETagMismatchTx, errs.StateETagInvalidTx, errs.StateTransaction}
)

// render builds the API error; args precede the plugin's message.
func (r etagRows) render(err error, args ...any) error {
	kind, msg := pluginError(err)
	row := r.other
	switch kind {
	case etagMismatch:
		row = r.mismatch
	case etagInvalid:
		row = r.invalid
	}
	return row.New(append(args, msg)...)
}

// get reads one key; a missing key is a response with no data.
func (t *target) get(ctx context.Context, userKey string, req *componentsv1.GetRequest) (*componentsv1.GetResponse, error) {
	resp, err := t.state.Get(ctx, req)
	if err != nil {
		_, msg := pluginError(err)
		return nil, errs.StateGet.New(userKey, t.Name, msg)
	}
	if resp == nil {
		resp = &componentsv1.GetResponse{}
	}
	return resp, nil
}

// save stores reqs: one Set, or a BulkSet (sequential Sets if the plugin does
// not serve BulkSet).
func (t *target) save(ctx context.Context, reqs []*componentsv1.SetRequest) error {
	var err error
	switch len(reqs) {
	case 0:
		return nil
	case 1:
		_, err = t.state.Set(ctx, reqs[0])
	default:
		_, err = t.state.BulkSet(ctx, &componentsv1.BulkSetRequest{Items: reqs, Options: &componentsv1.BulkSetRequestOptions{}})
		if isUnimplemented(err) {
			err = nil
			for _, r := range reqs {
				if _, err = t.state.Set(ctx, r); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return saveRows.render(err, t.Name)
	}
	return nil
}

// deleteOne deletes one key; userKey names it in errors.
func (t *target) deleteOne(ctx context.Context, userKey string, req *componentsv1.DeleteRequest) error {
	if _, err := t.state.Delete(ctx, req); err != nil {
		return deleteRows.render(err, userKey)
	}
	return nil
}

// deleteMany deletes reqs: one Delete, or a BulkDelete (sequential Deletes if
// the plugin does not serve BulkDelete).
func (t *target) deleteMany(ctx context.Context, reqs []*componentsv1.DeleteRequest) error {
	var err error
	switch len(reqs) {
	case 0:
		return nil
	case 1:
		_, err = t.state.Delete(ctx, reqs[0])
	default:
		_, err = t.state.BulkDelete(ctx, &componentsv1.BulkDeleteRequest{Items: reqs, Options: &componentsv1.BulkDeleteRequestOptions{}})
		if isUnimplemented(err) {
			err = nil
			for _, r := range reqs {
				if _, err = t.state.Delete(ctx, r); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return bulkDeleteRows.render(err, t.Name)
	}
	return nil
}

// bulkItem is one bulk get answer, key already stripped of its prefix.
type bulkItem struct {
	Key      string
	Data     []byte
	ETag     *string
	Metadata map[string]string
	Error    string
}

// bulkGet reads keys (user keys, in request order) with a plugin BulkGet, or
// with parallel Gets (at most parallelism at once; 0 = all) if the plugin does
// not serve BulkGet. The answer has one item per requested key, in order.
func (t *target) bulkGet(ctx context.Context, keys []string, md map[string]string, parallelism int64) ([]bulkItem, error) {
	storeKeys := make([]string, len(keys))
	reqs := make([]*componentsv1.GetRequest, len(keys))
	for i, k := range keys {
		sk, err := t.key(k)
		if err != nil {
			return nil, err
		}
		storeKeys[i] = sk
		reqs[i] = &componentsv1.GetRequest{Key: sk, Metadata: md}
	}
	out := make([]bulkItem, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	resp, err := t.state.BulkGet(ctx, &componentsv1.BulkGetRequest{Items: reqs, Options: &componentsv1.BulkGetRequestOptions{Parallelism: parallelism}})
	if isUnimplemented(err) {
		t.getEach(ctx, keys, reqs, parallelism, out)
		return out, nil
	}
	if err != nil {
		_, msg := pluginError(err)
		return nil, errs.StateBulkGet.New(fmt.Sprint(keys), msg)
	}
	byKey := make(map[string]*componentsv1.BulkStateItem, len(resp.GetItems()))
	for _, it := range resp.GetItems() {
		byKey[it.GetKey()] = it
	}
	for i, k := range keys {
		out[i].Key = k
		it, ok := byKey[storeKeys[i]]
		if !ok {
			continue // the plugin said nothing about it: not found
		}
		if it.GetError() != "" {
			out[i].Error = it.GetError()
			continue
		}
		out[i].Data = it.GetData()
		out[i].ETag = etagOf(it.GetEtag())
		out[i].Metadata = it.GetMetadata()
	}
	return out, nil
}

func (t *target) getEach(ctx context.Context, keys []string, reqs []*componentsv1.GetRequest, parallelism int64, out []bulkItem) {
	n := int64(len(reqs))
	if parallelism > 0 && parallelism < n {
		n = parallelism
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := range reqs {
		out[i].Key = keys[i]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := t.state.Get(ctx, reqs[i])
			if err != nil {
				_, msg := pluginError(err)
				out[i].Error = msg
				return
			}
			out[i].Data = resp.GetData()
			out[i].ETag = etagOf(resp.GetEtag())
			out[i].Metadata = resp.GetMetadata()
		})
	}
	wg.Wait()
}

// transact runs ops in one plugin transaction, after checking the store is
// transactional and, if the plugin tells its limit, that ops fit in it.
func (a *API) transact(ctx context.Context, t *target, ops []*componentsv1.TransactionalStateOperation, md map[string]string) error {
	if len(ops) == 0 {
		return nil
	}
	if max, err := a.multiMaxSize(ctx, t); err == nil && max > 0 && int64(len(ops)) > max {
		return errs.StateTooManyTransactions.New(len(ops), max).
			WithMeta("currentOpsTransaction", fmt.Sprint(len(ops)), "maxOpsPerTransaction", fmt.Sprint(max))
	}
	_, err := componentsv1.NewTransactionalStateStoreClient(t.Conn).Transact(ctx, &componentsv1.TransactionalStateRequest{Operations: ops, Metadata: md})
	if err != nil {
		return txRows.render(err)
	}
	return nil
}

// multiMaxSize asks the plugin for its transaction limit (0 = none), caching
// definite answers; Unimplemented means no limit.
func (a *API) multiMaxSize(ctx context.Context, t *target) (int64, error) {
	if v, ok := a.cachedMax(t); ok {
		return v, nil
	}
	resp, err := componentsv1.NewTransactionalStoreMultiMaxSizeClient(t.Conn).MultiMaxSize(ctx, &componentsv1.MultiMaxSizeRequest{})
	switch {
	case isUnimplemented(err):
		a.rememberMax(t, 0)
		return 0, nil
	case err != nil:
		return 0, err // not remembered: the plugin may be restarting
	}
	a.rememberMax(t, resp.GetMaxSize())
	return resp.GetMaxSize(), nil
}

// query runs a query on a QUERY_API store.
func (t *target) query(ctx context.Context, q *componentsv1.Query, md map[string]string) (*componentsv1.QueryResponse, error) {
	resp, err := componentsv1.NewQueriableStateStoreClient(t.Conn).Query(ctx, &componentsv1.QueryRequest{Query: q, Metadata: md})
	if err != nil {
		_, msg := pluginError(err)
		return nil, errs.StateQuery.New(t.Name, msg)
	}
	return resp, nil
}

// errNilValue is Dapr's answer to a save without a value.
var errNilValue = errors.New("an attempt to set a nil value was received, try to use Delete instead")

func etagOf(e *componentsv1.Etag) *string {
	if e == nil {
		return nil
	}
	v := e.GetValue()
	return &v
}

func toETag(v *string) *componentsv1.Etag {
	if v == nil {
		return nil
	}
	return &componentsv1.Etag{Value: *v}
}

// Option values as they appear in the HTTP API.
const (
	firstWrite = "first-write"
	lastWrite  = "last-write"
	strong     = "strong"
	eventual   = "eventual"
)

func concurrencyOf(s string) componentsv1.StateOptions_StateConcurrency {
	switch s {
	case firstWrite:
		return componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE
	case lastWrite:
		return componentsv1.StateOptions_CONCURRENCY_LAST_WRITE
	}
	return componentsv1.StateOptions_CONCURRENCY_UNSPECIFIED
}

func consistencyOf(s string) componentsv1.StateOptions_StateConsistency {
	switch s {
	case strong:
		return componentsv1.StateOptions_CONSISTENCY_STRONG
	case eventual:
		return componentsv1.StateOptions_CONSISTENCY_EVENTUAL
	}
	return componentsv1.StateOptions_CONSISTENCY_UNSPECIFIED
}

func options(concurrency, consistency string) *componentsv1.StateOptions {
	return &componentsv1.StateOptions{Concurrency: concurrencyOf(concurrency), Consistency: consistencyOf(consistency)}
}

// Conversions from the runtime API's common.v1 enums.
func concurrencyFromCommon(c commonv1.StateOptions_StateConcurrency) componentsv1.StateOptions_StateConcurrency {
	switch c {
	case commonv1.StateOptions_CONCURRENCY_FIRST_WRITE:
		return componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE
	case commonv1.StateOptions_CONCURRENCY_LAST_WRITE:
		return componentsv1.StateOptions_CONCURRENCY_LAST_WRITE
	}
	return componentsv1.StateOptions_CONCURRENCY_UNSPECIFIED
}

func consistencyFromCommon(c commonv1.StateOptions_StateConsistency) componentsv1.StateOptions_StateConsistency {
	switch c {
	case commonv1.StateOptions_CONSISTENCY_STRONG:
		return componentsv1.StateOptions_CONSISTENCY_STRONG
	case commonv1.StateOptions_CONSISTENCY_EVENTUAL:
		return componentsv1.StateOptions_CONSISTENCY_EVENTUAL
	}
	return componentsv1.StateOptions_CONSISTENCY_UNSPECIFIED
}

func optionsFromCommon(o *commonv1.StateOptions) *componentsv1.StateOptions {
	if o == nil {
		return &componentsv1.StateOptions{}
	}
	return &componentsv1.StateOptions{Concurrency: concurrencyFromCommon(o.GetConcurrency()), Consistency: consistencyFromCommon(o.GetConsistency())}
}
