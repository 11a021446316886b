package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// memPlugin is a test double of a state store *plugin process*: an in-memory
// store served over a loopback gRPC listener with the componentsv1 protocol.
// It enforces etags (version counters, first-write), honours ttlInSeconds
// (reporting ttlExpireTime metadata, on a clock the test controls), runs
// transactions atomically and answers EQ queries on top-level JSON fields.
type memPlugin struct {
	componentsv1.UnimplementedStateStoreServer
	componentsv1.UnimplementedTransactionalStateStoreServer
	componentsv1.UnimplementedQueriableStateStoreServer
	componentsv1.UnimplementedTransactionalStoreMultiMaxSizeServer

	noBulk  bool  // BulkGet/BulkSet/BulkDelete answer Unimplemented
	maxSize int64 // MultiMaxSize answer; 0 = Unimplemented

	mu        sync.Mutex
	now       time.Time
	data      map[string]*entry
	version   uint64
	lastGet   *componentsv1.GetRequest
	lastSet   *componentsv1.SetRequest
	lastDel   *componentsv1.DeleteRequest
	lastBulk  *componentsv1.BulkGetRequest
	lastTx    *componentsv1.TransactionalStateRequest
	lastQuery *componentsv1.QueryRequest
	maxCalls  int
}

type entry struct {
	value   []byte
	version uint64
	expires time.Time // zero = never
}

func newMemPlugin() *memPlugin {
	return &memPlugin{data: map[string]*entry{}, now: time.Unix(1_700_000_000, 0).UTC()}
}

// serve starts p on a loopback listener and returns a client connection and
// a stop function (stopping makes every later call fail with Unavailable).
func (p *memPlugin) serve(t testing.TB) (*grpc.ClientConn, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := grpc.NewServer()
	componentsv1.RegisterStateStoreServer(s, p)
	componentsv1.RegisterTransactionalStateStoreServer(s, p)
	componentsv1.RegisterQueriableStateStoreServer(s, p)
	componentsv1.RegisterTransactionalStoreMultiMaxSizeServer(s, p)
	go func() { _ = s.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial plugin: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		s.Stop()
	})
	return conn, s.Stop
}

func etagStatus(code codes.Code, msg string) error {
	st, _ := status.New(code, msg).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "etag", Description: msg}},
	})
	return st.Err()
}

func (p *memPlugin) advance(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now = p.now.Add(d)
}

// raw returns the stored bytes under the plugin's own key (prefix included).
func (p *memPlugin) raw(key string) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.live(p.data, key)
	if e == nil {
		return nil, false
	}
	return e.value, true
}

func (p *memPlugin) live(data map[string]*entry, key string) *entry {
	e := data[key]
	if e == nil || (!e.expires.IsZero() && !p.now.Before(e.expires)) {
		return nil
	}
	return e
}

// check enforces the etag rules for a write to key.
func (p *memPlugin) check(data map[string]*entry, key string, etag *componentsv1.Etag, conc componentsv1.StateOptions_StateConcurrency) error {
	cur := p.live(data, key)
	if etag == nil || etag.GetValue() == "" {
		if conc == componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE && cur != nil {
			return etagStatus(codes.FailedPrecondition, "possible etag mismatch: first-write without etag on an existing key")
		}
		return nil
	}
	v, err := strconv.ParseUint(etag.GetValue(), 10, 64)
	if err != nil {
		return etagStatus(codes.InvalidArgument, fmt.Sprintf("invalid etag value %q", etag.GetValue()))
	}
	if cur == nil || cur.version != v {
		return etagStatus(codes.FailedPrecondition, fmt.Sprintf("possible etag mismatch: etag %s", etag.GetValue()))
	}
	return nil
}

func (p *memPlugin) set(data map[string]*entry, r *componentsv1.SetRequest) error {
	if err := p.check(data, r.GetKey(), r.GetEtag(), r.GetOptions().GetConcurrency()); err != nil {
		return err
	}
	p.version++
	e := &entry{value: slices.Clone(r.GetValue()), version: p.version}
	if s, ok := r.GetMetadata()["ttlInSeconds"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "ttlInSeconds %q: %v", s, err)
		}
		if n > 0 {
			e.expires = p.now.Add(time.Duration(n) * time.Second)
		}
	}
	data[r.GetKey()] = e
	return nil
}

func (p *memPlugin) del(data map[string]*entry, r *componentsv1.DeleteRequest) error {
	if err := p.check(data, r.GetKey(), r.GetEtag(), r.GetOptions().GetConcurrency()); err != nil {
		return err
	}
	delete(data, r.GetKey())
	return nil
}

func (p *memPlugin) getResp(key string) *componentsv1.GetResponse {
	e := p.live(p.data, key)
	if e == nil {
		return &componentsv1.GetResponse{}
	}
	r := &componentsv1.GetResponse{Data: e.value, Etag: &componentsv1.Etag{Value: strconv.FormatUint(e.version, 10)}}
	if !e.expires.IsZero() {
		r.Metadata = map[string]string{"ttlExpireTime": e.expires.Format(time.RFC3339)}
	}
	return r
}

func (p *memPlugin) Init(context.Context, *componentsv1.InitRequest) (*componentsv1.InitResponse, error) {
	return &componentsv1.InitResponse{}, nil
}

func (p *memPlugin) Features(context.Context, *componentsv1.FeaturesRequest) (*componentsv1.FeaturesResponse, error) {
	return &componentsv1.FeaturesResponse{Features: []string{FeatureETag, FeatureTransactional, FeatureQueryAPI, FeatureTTL}}, nil
}

func (p *memPlugin) Ping(context.Context, *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	return &componentsv1.PingResponse{}, nil
}

func (p *memPlugin) Get(_ context.Context, r *componentsv1.GetRequest) (*componentsv1.GetResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastGet = r
	return p.getResp(r.GetKey()), nil
}

func (p *memPlugin) Set(_ context.Context, r *componentsv1.SetRequest) (*componentsv1.SetResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastSet = r
	if err := p.set(p.data, r); err != nil {
		return nil, err
	}
	return &componentsv1.SetResponse{}, nil
}

func (p *memPlugin) Delete(_ context.Context, r *componentsv1.DeleteRequest) (*componentsv1.DeleteResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastDel = r
	if err := p.del(p.data, r); err != nil {
		return nil, err
	}
	return &componentsv1.DeleteResponse{}, nil
}

func (p *memPlugin) BulkGet(ctx context.Context, r *componentsv1.BulkGetRequest) (*componentsv1.BulkGetResponse, error) {
	if p.noBulk {
		return p.UnimplementedStateStoreServer.BulkGet(ctx, r)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastBulk = r
	out := &componentsv1.BulkGetResponse{}
	for _, g := range r.GetItems() {
		gr := p.getResp(g.GetKey())
		out.Items = append(out.Items, &componentsv1.BulkStateItem{Key: g.GetKey(), Data: gr.GetData(), Etag: gr.GetEtag(), Metadata: gr.GetMetadata()})
	}
	return out, nil
}

func (p *memPlugin) BulkSet(ctx context.Context, r *componentsv1.BulkSetRequest) (*componentsv1.BulkSetResponse, error) {
	if p.noBulk {
		return p.UnimplementedStateStoreServer.BulkSet(ctx, r)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range r.GetItems() {
		if err := p.set(p.data, s); err != nil {
			return nil, err
		}
	}
	return &componentsv1.BulkSetResponse{}, nil
}

func (p *memPlugin) BulkDelete(ctx context.Context, r *componentsv1.BulkDeleteRequest) (*componentsv1.BulkDeleteResponse, error) {
	if p.noBulk {
		return p.UnimplementedStateStoreServer.BulkDelete(ctx, r)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range r.GetItems() {
		if err := p.del(p.data, d); err != nil {
			return nil, err
		}
	}
	return &componentsv1.BulkDeleteResponse{}, nil
}

func (p *memPlugin) Transact(_ context.Context, r *componentsv1.TransactionalStateRequest) (*componentsv1.TransactionalStateResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastTx = r
	work := make(map[string]*entry, len(p.data))
	for k, v := range p.data {
		work[k] = v
	}
	for _, op := range r.GetOperations() {
		var err error
		switch {
		case op.GetSet() != nil:
			err = p.set(work, op.GetSet())
		case op.GetDelete() != nil:
			err = p.del(work, op.GetDelete())
		default:
			err = status.Error(codes.InvalidArgument, "empty operation")
		}
		if err != nil {
			return nil, err
		}
	}
	p.data = work
	return &componentsv1.TransactionalStateResponse{}, nil
}

func (p *memPlugin) MultiMaxSize(ctx context.Context, r *componentsv1.MultiMaxSizeRequest) (*componentsv1.MultiMaxSizeResponse, error) {
	p.mu.Lock()
	p.maxCalls++
	p.mu.Unlock()
	if p.maxSize == 0 {
		return p.UnimplementedTransactionalStoreMultiMaxSizeServer.MultiMaxSize(ctx, r)
	}
	return &componentsv1.MultiMaxSizeResponse{MaxSize: p.maxSize}, nil
}

// Query supports an empty filter or {"EQ": {"<top-level field>": value}},
// sorted by key, with limit/token paging (token = next offset).
func (p *memPlugin) Query(_ context.Context, r *componentsv1.QueryRequest) (*componentsv1.QueryResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastQuery = r
	var field string
	var want json.RawMessage
	for op, v := range r.GetQuery().GetFilter() {
		if op != "EQ" {
			return nil, status.Errorf(codes.InvalidArgument, "unsupported filter %s", op)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v.GetValue(), &m); err != nil || len(m) != 1 {
			return nil, status.Errorf(codes.InvalidArgument, "bad EQ filter %s", v.GetValue())
		}
		for field, want = range m {
		}
	}
	keys := make([]string, 0, len(p.data))
	for k := range p.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var items []*componentsv1.QueryItem
	for _, k := range keys {
		e := p.live(p.data, k)
		if e == nil {
			continue
		}
		if field != "" {
			var doc map[string]json.RawMessage
			if json.Unmarshal(e.value, &doc) != nil || !bytes.Equal(doc[field], want) {
				continue
			}
		}
		items = append(items, &componentsv1.QueryItem{Key: k, Data: e.value, Etag: &componentsv1.Etag{Value: strconv.FormatUint(e.version, 10)}})
	}
	off, _ := strconv.Atoi(r.GetQuery().GetPagination().GetToken())
	items = items[min(off, len(items)):]
	resp := &componentsv1.QueryResponse{Metadata: map[string]string{"seen": "yes"}}
	if l := int(r.GetQuery().GetPagination().GetLimit()); l > 0 && l < len(items) {
		items = items[:l]
		resp.Token = strconv.Itoa(off + l)
	}
	resp.Items = items
	return resp, nil
}

// testStores is the Stores the tests hand the block.
type testStores map[string]Store

func (s testStores) Lookup(name string) (Store, bool) {
	st, ok := s[name]
	return st, ok
}

func (s testStores) Names() []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	return out
}

// unavailableConn mimics the plugin host's connection while a plugin is
// restarting: every call fails fast with Unavailable naming the plugin.
type unavailableConn struct{}

func (unavailableConn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return status.Error(codes.Unavailable, `plugin "state-mem" is restarting`)
}

func (unavailableConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unavailable, `plugin "state-mem" is restarting`)
}

// fixture is a block wired to in-memory plugins:
//
//	"mem"      full-featured, default (appid) prefix
//	"plain"    no TRANSACTIONAL / QUERY_API, plugin without Bulk* RPCs
//	"small"    transactional, MultiMaxSize 2
//	"down"     plugin stopped (connection refused)
//	"restart"  host connection failing fast with Unavailable
//	"byname", "none", "ns", "lit", "bad"   keyPrefix strategies on mem's plugin
type fixture struct {
	api   *API
	mem   *memPlugin
	plain *memPlugin
	small *memPlugin
}

const testAppID = "myapp"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	all := []string{FeatureETag, FeatureTransactional, FeatureQueryAPI, FeatureTTL}
	f := &fixture{mem: newMemPlugin(), plain: newMemPlugin(), small: newMemPlugin()}
	f.plain.noBulk = true
	f.small.maxSize = 2
	memConn, _ := f.mem.serve(t)
	plainConn, _ := f.plain.serve(t)
	smallConn, _ := f.small.serve(t)
	downConn, stop := newMemPlugin().serve(t)
	stop()
	stores := testStores{
		"mem":     {Name: "mem", Conn: memConn, Features: all},
		"plain":   {Name: "plain", Conn: plainConn, Features: []string{FeatureETag}},
		"small":   {Name: "small", Conn: smallConn, Features: all},
		"down":    {Name: "down", Conn: downConn, Features: all},
		"restart": {Name: "restart", Conn: unavailableConn{}, Features: all},
		"byname":  {Name: "byname", Conn: memConn, Features: all, KeyPrefix: "name"},
		"none":    {Name: "none", Conn: memConn, Features: all, KeyPrefix: "none"},
		"ns":      {Name: "ns", Conn: memConn, Features: all, KeyPrefix: "namespace"},
		"lit":     {Name: "lit", Conn: memConn, Features: all, KeyPrefix: "Shared"},
		"bad":     {Name: "bad", Conn: memConn, Features: all, KeyPrefix: "a||b"},
	}
	f.api = New(Config{AppID: testAppID, Namespace: "prod", Stores: stores})
	return f
}
