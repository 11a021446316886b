package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"

	"github.com/outrigger/outrigger/proxy/errs"
)

// RegisterHTTP adds the state routes (Dapr 1.14) to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	for _, m := range []string{http.MethodPost, http.MethodPut} {
		mux.HandleFunc(m+" /v1.0/state/{storeName}", a.httpSave)
		mux.HandleFunc(m+" /v1.0/state/{storeName}/bulk", a.httpBulkGet)
		mux.HandleFunc(m+" /v1.0/state/{storeName}/transaction", a.httpTransaction)
		mux.HandleFunc(m+" /v1.0-alpha1/state/{storeName}/query", a.httpQuery)
	}
	mux.HandleFunc("GET /v1.0/state/{storeName}/{key}", a.httpGet)
	mux.HandleFunc("DELETE /v1.0/state/{storeName}/{key}", a.httpDelete)
}

const metadataPrefix = "metadata."

// queryMetadata collects the metadata.<k>=<v> query parameters.
func queryMetadata(r *http.Request) map[string]string {
	if !strings.Contains(r.URL.RawQuery, metadataPrefix) {
		return map[string]string{}
	}
	md := map[string]string{}
	for k, vs := range r.URL.Query() {
		if name, ok := strings.CutPrefix(k, metadataPrefix); ok && len(vs) > 0 {
			md[name] = vs[0]
		}
	}
	return md
}

// merge returns body metadata overlaid with query metadata (query wins). It
// writes into body; query is never modified, so it may be shared.
func merge(body, query map[string]string) map[string]string {
	if len(body) == 0 {
		return query
	}
	for k, v := range query {
		body[k] = v
	}
	return body
}

// readBody reads the request body, reporting an over-limit body as 413.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errs.BodyTooLarge.New(mbe.Limit)
		}
		return nil, errs.BodyRead.New(err.Error())
	}
	return b, nil
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Debug("state request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	errs.WriteHTTP(w, err)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// GET /v1.0/state/{storeName}/{key}
func (a *API) httpGet(w http.ResponseWriter, r *http.Request) {
	t, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	userKey := r.PathValue("key")
	k, err := t.key(userKey)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	resp, err := t.get(r.Context(), userKey, &componentsv1.GetRequest{
		Key: k, Metadata: queryMetadata(r), Consistency: consistencyOf(q.Get("consistency")),
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if resp.GetData() == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h := w.Header()
	if e := resp.GetEtag(); e != nil {
		h.Set("ETag", e.GetValue())
	}
	for mk, mv := range resp.GetMetadata() {
		h.Set(metadataPrefix+mk, mv)
	}
	writeJSON(w, http.StatusOK, resp.GetData())
}

// saveItem is one element of the HTTP save body. Value keeps its raw JSON.
type saveItem struct {
	Key         string            `json:"key"`
	Value       json.RawMessage   `json:"value"`
	ETag        *string           `json:"etag,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Options     stateOptions      `json:"options"`
	ContentType *string           `json:"contentType,omitempty"`
}

type stateOptions struct {
	Concurrency string `json:"concurrency,omitempty"`
	Consistency string `json:"consistency,omitempty"`
}

// setRequest turns an HTTP item into the plugin request: the value's raw JSON
// bytes are stored as they came.
func (t *target) setRequest(it *saveItem, md map[string]string) (*componentsv1.SetRequest, error) {
	k, err := t.key(it.Key)
	if err != nil {
		return nil, err
	}
	if len(it.Value) == 0 || bytes.Equal(it.Value, []byte("null")) {
		return nil, errNilValue
	}
	req := &componentsv1.SetRequest{
		Key: k, Value: []byte(it.Value), Etag: toETag(it.ETag), Metadata: md,
		Options: options(it.Options.Concurrency, it.Options.Consistency),
	}
	if it.ContentType != nil {
		req.ContentType = *it.ContentType
	}
	return req, nil
}

// POST|PUT /v1.0/state/{storeName}
func (a *API) httpSave(w http.ResponseWriter, r *http.Request) {
	t, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var items []saveItem
	if err := json.Unmarshal(body, &items); err != nil {
		a.fail(w, r, errs.MalformedRequest.New(err.Error()))
		return
	}
	if len(items) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	qmd := queryMetadata(r)
	reqs := make([]*componentsv1.SetRequest, len(items))
	for i := range items {
		if items[i].Key == "" {
			a.fail(w, r, errs.MalformedRequest.New(`"key" is a required field`))
			return
		}
		req, err := t.setRequest(&items[i], merge(items[i].Metadata, qmd))
		if errors.Is(err, errNilValue) {
			err = errs.StateSave.New(t.Name, err.Error())
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		reqs[i] = req
	}
	if err := t.save(r.Context(), reqs); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DELETE /v1.0/state/{storeName}/{key}
func (a *API) httpDelete(w http.ResponseWriter, r *http.Request) {
	t, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	userKey := r.PathValue("key")
	k, err := t.key(userKey)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	req := &componentsv1.DeleteRequest{Key: k, Metadata: queryMetadata(r), Options: options(q.Get("concurrency"), q.Get("consistency"))}
	if v, ok := r.Header["If-Match"]; ok && len(v) > 0 {
		req.Etag = &componentsv1.Etag{Value: v[0]}
	}
	if err := t.deleteOne(r.Context(), userKey, req); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type bulkGetBody struct {
	Keys        []string          `json:"keys"`
	Parallelism int64             `json:"parallelism"`
	Metadata    map[string]string `json:"metadata"`
}

// bulkGetItem is one element of the HTTP bulk get answer.
type bulkGetItem struct {
	Key      string            `json:"key"`
	Data     json.RawMessage   `json:"data,omitempty"`
	ETag     *string           `json:"etag,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// jsonData renders stored bytes in a JSON answer: as they are when they are
// valid JSON, else as a JSON string.
func jsonData(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// POST|PUT /v1.0/state/{storeName}/bulk
func (a *API) httpBulkGet(w http.ResponseWriter, r *http.Request) {
	t, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in bulkGetBody
	if err := json.Unmarshal(body, &in); err != nil {
		a.fail(w, r, errs.MalformedRequest.New(err.Error()))
		return
	}
	items, err := t.bulkGet(r.Context(), in.Keys, merge(in.Metadata, queryMetadata(r)), in.Parallelism)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]bulkGetItem, len(items))
	for i, it := range items {
		out[i] = bulkGetItem{Key: it.Key, Data: jsonData(it.Data), ETag: it.ETag, Metadata: it.Metadata, Error: it.Error}
	}
	b, err := json.Marshal(out)
	if err != nil {
		a.fail(w, r, errs.StateBulkGet.New(fmt.Sprint(in.Keys), err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, b)
}

type txBody struct {
	Operations []txOperation     `json:"operations"`
	Metadata   map[string]string `json:"metadata"`
}

type txOperation struct {
	Operation string   `json:"operation"`
	Request   saveItem `json:"request"`
}

// Transaction operation types.
const (
	opUpsert = "upsert"
	opDelete = "delete"
)

// POST|PUT /v1.0/state/{storeName}/transaction
func (a *API) httpTransaction(w http.ResponseWriter, r *http.Request) {
	t, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !t.HasFeature(FeatureTransactional) {
		a.fail(w, r, errs.StateStoreNotSupported.New(t.Name, "transactions"))
		return
	}
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in txBody
	if err := json.Unmarshal(body, &in); err != nil {
		a.fail(w, r, errs.MalformedRequest.New(err.Error()))
		return
	}
	if len(in.Operations) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	md := merge(in.Metadata, queryMetadata(r))
	ops := make([]*componentsv1.TransactionalStateOperation, len(in.Operations))
	for i := range in.Operations {
		op := &in.Operations[i]
		switch op.Operation {
		case opUpsert:
			req, err := t.setRequest(&op.Request, op.Request.Metadata)
			if errors.Is(err, errNilValue) {
				err = errs.StateTransaction.New(err.Error())
			}
			if err != nil {
				a.fail(w, r, err)
				return
			}
			ops[i] = &componentsv1.TransactionalStateOperation{Request: &componentsv1.TransactionalStateOperation_Set{Set: req}}
		case opDelete:
			k, err := t.key(op.Request.Key)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			ops[i] = &componentsv1.TransactionalStateOperation{Request: &componentsv1.TransactionalStateOperation_Delete{Delete: &componentsv1.DeleteRequest{
				Key: k, Etag: toETag(op.Request.ETag), Metadata: op.Request.Metadata,
				Options: options(op.Request.Options.Concurrency, op.Request.Options.Consistency),
			}}}
		default:
			a.fail(w, r, errs.NotSupportedStateOp.New(op.Operation))
			return
		}
	}
	if err := a.transact(r.Context(), t, ops, md); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// queryAnswer is the HTTP query answer.
type queryAnswer struct {
	Results  []queryItem       `json:"results"`
	Token    string            `json:"token,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type queryItem struct {
	Key   string          `json:"key"`
	Data  json.RawMessage `json:"data"`
	ETag  *string         `json:"etag,omitempty"`
	Error string          `json:"error,omitempty"`
}

// POST|PUT /v1.0-alpha1/state/{storeName}/query
func (a *API) httpQuery(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	resp, err := a.runQuery(r.Context(), r.PathValue("storeName"), body, queryMetadata(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(resp.GetItems()) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	out := queryAnswer{Results: make([]queryItem, len(resp.GetItems())), Token: resp.GetToken(), Metadata: resp.GetMetadata()}
	for i, it := range resp.GetItems() {
		out.Results[i] = queryItem{Key: originalKey(it.GetKey()), Data: jsonData(it.GetData()), Error: it.GetError()}
		if e := it.GetEtag(); e != nil && e.GetValue() != "" {
			v := e.GetValue()
			out.Results[i].ETag = &v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		a.fail(w, r, errs.StateQuery.New(r.PathValue("storeName"), err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, b)
}
