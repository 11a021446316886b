package sdktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// callTimeout bounds every single RPC so a hanging store fails fast.
const callTimeout = 10 * time.Second

// stateHarness is a store served by the SDK over bufconn plus its clients.
type stateHarness struct {
	t        *testing.T
	instance string
	run      string // unique per call, prefixes every key
	caps     capabilities
	store    componentsv1.StateStoreClient
	tx       componentsv1.TransactionalStateStoreClient
	query    componentsv1.QueriableStateStoreClient
}

type capabilities struct{ etag, tx, query, ttl bool }

// ExerciseStateStore checks a state store against the plugin contract:
// Init, Features (both ways), CRUD, missing keys, etags, bulk, transactions,
// TTL, large values, concurrent writers, unicode keys and queries, each
// capability in its own subtest. newStore is the plugin's factory; md is the
// component metadata passed to Init. Every key it writes starts with a
// random run id, so stores backed by shared servers may be reused.
func ExerciseStateStore(t *testing.T, newStore func() sdk.StateStore, md sdk.Metadata) {
	t.Helper()
	probe := newStore()
	if probe == nil {
		t.Fatal("factory returned a nil store")
	}
	_, etag := probe.(sdk.ETagger)
	_, tx := probe.(sdk.Transactioner)
	_, q := probe.(sdk.Querier)
	_, ttl := probe.(sdk.TTLer)
	if c, ok := probe.(sdk.Closer); ok {
		_ = c.Close() // never Init'ed; closing must be harmless
	}

	h := &stateHarness{t: t, instance: "conformance-" + randomID(), run: randomID(), caps: capabilities{etag, tx, q, ttl}}
	conn := serveBufconn(t, newStore)
	h.store = componentsv1.NewStateStoreClient(conn)
	h.tx = componentsv1.NewTransactionalStateStoreClient(conn)
	h.query = componentsv1.NewQueriableStateStoreClient(conn)

	t.Run("uninitialised instance", h.testUninitialised)
	ctx, cancel := h.ctx()
	_, err := h.store.Init(ctx, &componentsv1.InitRequest{Metadata: &componentsv1.MetadataRequest{Properties: md}})
	cancel()
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Run("features", h.testFeatures)
	t.Run("ping", h.testPing)
	t.Run("crud", h.testCRUD)
	t.Run("missing keys", h.testMissing)
	t.Run("unicode keys", h.testUnicode)
	t.Run("large values", h.testLarge)
	t.Run("bulk", h.testBulk)
	t.Run("concurrent writers", h.testConcurrent)
	if etag {
		t.Run("etags", h.testETags)
		t.Run("first-write", h.testFirstWrite)
	}
	if tx {
		t.Run("transactions", h.testTransactions)
	}
	if ttl {
		t.Run("ttl", h.testTTL)
	}
	if q {
		t.Run("query", h.testQuery)
	}
}

func serveBufconn(t *testing.T, newStore func() sdk.StateStore) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(4 << 20)
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithStateStore(newStore), sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatalf("sdk.Register: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)),
	)
	if err != nil {
		t.Fatalf("dialing bufconn: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		if err := closeAll(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return conn
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *stateHarness) ctx() (context.Context, context.CancelFunc) {
	return h.ctxFor(h.instance)
}

func (h *stateHarness) ctxFor(instance string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	return metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, instance), cancel
}

func (h *stateHarness) key(name string) string { return h.run + "-" + name }

// --- small call helpers ---------------------------------------------------

func (h *stateHarness) set(key string, value []byte, etag *string, md map[string]string, concurrency componentsv1.StateOptions_StateConcurrency) error {
	ctx, cancel := h.ctx()
	defer cancel()
	req := &componentsv1.SetRequest{Key: key, Value: value, Metadata: md, Options: &componentsv1.StateOptions{Concurrency: concurrency}}
	if etag != nil {
		req.Etag = &componentsv1.Etag{Value: *etag}
	}
	_, err := h.store.Set(ctx, req)
	return err
}

func (h *stateHarness) mustSet(t *testing.T, key string, value []byte) {
	t.Helper()
	if err := h.set(key, value, nil, nil, 0); err != nil {
		t.Fatalf("Set %q: %v", key, err)
	}
}

func (h *stateHarness) get(t *testing.T, key string) *componentsv1.GetResponse {
	t.Helper()
	ctx, cancel := h.ctx()
	defer cancel()
	resp, err := h.store.Get(ctx, &componentsv1.GetRequest{Key: key})
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return resp
}

func (h *stateHarness) del(key string, etag *string) error {
	ctx, cancel := h.ctx()
	defer cancel()
	req := &componentsv1.DeleteRequest{Key: key}
	if etag != nil {
		req.Etag = &componentsv1.Etag{Value: *etag}
	}
	_, err := h.store.Delete(ctx, req)
	return err
}

func (h *stateHarness) expectValue(t *testing.T, key string, want []byte) *componentsv1.GetResponse {
	t.Helper()
	resp := h.get(t, key)
	if !bytes.Equal(resp.GetData(), want) {
		t.Fatalf("Get %q = %q, want %q", key, abbreviate(resp.GetData()), abbreviate(want))
	}
	if h.caps.etag && resp.GetEtag().GetValue() == "" {
		t.Fatalf("Get %q: store advertises ETAG but returned no etag", key)
	}
	return resp
}

func (h *stateHarness) expectMissing(t *testing.T, key string) {
	t.Helper()
	resp := h.get(t, key)
	if len(resp.GetData()) != 0 || resp.GetEtag() != nil {
		t.Fatalf("Get missing %q = data %q etag %v, want empty response", key, abbreviate(resp.GetData()), resp.GetEtag())
	}
}

func abbreviate(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%s…(%d bytes)", b[:64], len(b))
	}
	return string(b)
}

// expectETagError checks err is a gRPC status with one of codes and a
// google.rpc.BadRequest field violation on "etag".
func expectETagError(t *testing.T, what string, err error, want ...codes.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %v", what, want)
	}
	st, ok := status.FromError(err)
	if !ok || !slices.Contains(want, st.Code()) {
		t.Fatalf("%s: error %v, want gRPC code %v", what, err, want)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == "etag" {
					return
				}
			}
		}
	}
	t.Fatalf("%s: %v lacks a google.rpc.BadRequest field violation on \"etag\"", what, err)
}

func ptr(s string) *string { return &s }

// --- subtests -------------------------------------------------------------

func (h *stateHarness) testUninitialised(t *testing.T) {
	ctx, cancel := h.ctxFor("never-initialised-" + h.run)
	defer cancel()
	_, err := h.store.Get(ctx, &componentsv1.GetRequest{Key: h.key("x")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Get on an instance that was not Init'ed: %v, want FailedPrecondition", err)
	}
}

func (h *stateHarness) testFeatures(t *testing.T) {
	ctx, cancel := h.ctx()
	defer cancel()
	resp, err := h.store.Features(ctx, &componentsv1.FeaturesRequest{})
	if err != nil {
		t.Fatalf("Features: %v", err)
	}
	got := resp.GetFeatures()
	checks := []struct {
		feature string
		has     bool
	}{
		{sdk.FeatureETag, h.caps.etag},
		{sdk.FeatureTransactional, h.caps.tx},
		{sdk.FeatureQueryAPI, h.caps.query},
		{sdk.FeatureTTL, h.caps.ttl},
	}
	for _, c := range checks {
		if adv := slices.Contains(got, c.feature); adv != c.has {
			t.Errorf("feature %s advertised=%v but implemented=%v (features %v)", c.feature, adv, c.has, got)
		}
	}
	// A capability that is not implemented must not answer on the wire either.
	if !h.caps.tx {
		_, err := h.tx.Transact(ctx, &componentsv1.TransactionalStateRequest{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("Transact on a non-transactional store: %v, want Unimplemented", err)
		}
	}
	if !h.caps.query {
		_, err := h.query.Query(ctx, &componentsv1.QueryRequest{Query: &componentsv1.Query{}})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("Query on a non-queriable store: %v, want Unimplemented", err)
		}
	}
}

func (h *stateHarness) testPing(t *testing.T) {
	ctx, cancel := h.ctx()
	defer cancel()
	if _, err := h.store.Ping(ctx, &componentsv1.PingRequest{}); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func (h *stateHarness) testCRUD(t *testing.T) {
	k := h.key("crud")
	h.mustSet(t, k, []byte(`{"v":1}`))
	first := h.expectValue(t, k, []byte(`{"v":1}`))
	h.mustSet(t, k, []byte("plain text, not JSON"))
	second := h.expectValue(t, k, []byte("plain text, not JSON"))
	if h.caps.etag && first.GetEtag().GetValue() == second.GetEtag().GetValue() {
		t.Errorf("etag did not change on overwrite: %q", first.GetEtag().GetValue())
	}
	h.mustSet(t, k, []byte{0, 1, 2, 255, 254})
	h.expectValue(t, k, []byte{0, 1, 2, 255, 254})
	h.mustSet(t, k, []byte{})
	if resp := h.get(t, k); len(resp.GetData()) != 0 {
		t.Errorf("Get after setting an empty value = %q", resp.GetData())
	}
	if err := h.del(k, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	h.expectMissing(t, k)
}

func (h *stateHarness) testMissing(t *testing.T) {
	k := h.key("never-written")
	h.expectMissing(t, k)
	if err := h.del(k, nil); err != nil {
		t.Fatalf("Delete of a missing key without etag: %v, want success", err)
	}
}

func (h *stateHarness) testUnicode(t *testing.T) {
	names := []string{"ключ", "键/with spaces", "emoji🙂", "app||key||nested", `quote'"back\slash`, "percent%_under", "tab\tnewline\n"}
	for _, n := range names {
		k := h.key(n)
		v := []byte("value of " + n)
		h.mustSet(t, k, v)
		h.expectValue(t, k, v)
	}
	for _, n := range names {
		if err := h.del(h.key(n), nil); err != nil {
			t.Fatalf("Delete %q: %v", n, err)
		}
		h.expectMissing(t, h.key(n))
	}
}

func (h *stateHarness) testLarge(t *testing.T) {
	v := make([]byte, 3<<19) // 1.5 MiB
	_, _ = rand.Read(v)
	k := h.key("large")
	h.mustSet(t, k, v)
	h.expectValue(t, k, v)
	if err := h.del(k, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

func (h *stateHarness) testBulk(t *testing.T) {
	ctx, cancel := h.ctx()
	defer cancel()
	const n = 5
	var sets []*componentsv1.SetRequest
	var gets []*componentsv1.GetRequest
	var dels []*componentsv1.DeleteRequest
	for i := range n {
		k := h.key("bulk-" + strconv.Itoa(i))
		sets = append(sets, &componentsv1.SetRequest{Key: k, Value: []byte(`"v` + strconv.Itoa(i) + `"`)})
		gets = append(gets, &componentsv1.GetRequest{Key: k})
		dels = append(dels, &componentsv1.DeleteRequest{Key: k})
	}
	if _, err := h.store.BulkSet(ctx, &componentsv1.BulkSetRequest{Items: sets}); err != nil {
		t.Fatalf("BulkSet: %v", err)
	}
	missing := h.key("bulk-missing")
	resp, err := h.store.BulkGet(ctx, &componentsv1.BulkGetRequest{Items: append(slices.Clone(gets), &componentsv1.GetRequest{Key: missing})})
	if err != nil {
		t.Fatalf("BulkGet: %v", err)
	}
	got := map[string]*componentsv1.BulkStateItem{}
	for _, it := range resp.GetItems() {
		got[it.GetKey()] = it
	}
	for i, s := range sets {
		it, ok := got[s.GetKey()]
		switch {
		case !ok:
			t.Errorf("BulkGet: key %q absent from response", s.GetKey())
		case it.GetError() != "":
			t.Errorf("BulkGet %q: error %q", s.GetKey(), it.GetError())
		case !bytes.Equal(it.GetData(), s.GetValue()):
			t.Errorf("BulkGet item %d = %q, want %q", i, it.GetData(), s.GetValue())
		case h.caps.etag && it.GetEtag().GetValue() == "":
			t.Errorf("BulkGet %q: no etag", s.GetKey())
		}
	}
	if it, ok := got[missing]; ok && (len(it.GetData()) != 0 || it.GetEtag() != nil) {
		t.Errorf("BulkGet missing key: data %q etag %v, want none", it.GetData(), it.GetEtag())
	}
	if h.caps.etag {
		// One stale etag in a bulk set fails the call with the etag mapping.
		bad := slices.Clone(sets)
		bad[0] = &componentsv1.SetRequest{Key: sets[0].GetKey(), Value: []byte(`"x"`), Etag: &componentsv1.Etag{Value: staleETag(got[sets[0].GetKey()].GetEtag().GetValue())}}
		_, err := h.store.BulkSet(ctx, &componentsv1.BulkSetRequest{Items: bad[:1]})
		expectETagError(t, "BulkSet with a stale etag", err, codes.FailedPrecondition)
	}
	if _, err := h.store.BulkDelete(ctx, &componentsv1.BulkDeleteRequest{Items: dels}); err != nil {
		t.Fatalf("BulkDelete: %v", err)
	}
	resp, err = h.store.BulkGet(ctx, &componentsv1.BulkGetRequest{Items: gets})
	if err != nil {
		t.Fatalf("BulkGet after BulkDelete: %v", err)
	}
	for _, it := range resp.GetItems() {
		if len(it.GetData()) != 0 {
			t.Errorf("BulkGet after BulkDelete: %q still has data %q", it.GetKey(), it.GetData())
		}
	}
}

// staleETag returns an etag that is well-formed-looking but not current:
// the stored etag is the only one guaranteed to match, so mangle it.
func staleETag(current string) string {
	if n, err := strconv.ParseUint(current, 10, 64); err == nil {
		return strconv.FormatUint(n+1000003, 10)
	}
	if current == "" {
		return "1"
	}
	b := []byte(current)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}

func (h *stateHarness) testETags(t *testing.T) {
	k := h.key("etag")
	h.mustSet(t, k, []byte("1"))
	e1 := h.expectValue(t, k, []byte("1")).GetEtag().GetValue()

	err := h.set(k, []byte("2"), ptr(staleETag(e1)), nil, 0)
	expectETagError(t, "Set with a stale etag", err, codes.FailedPrecondition)
	h.expectValue(t, k, []byte("1"))

	err = h.set(k, []byte("2"), ptr("!not an etag!"), nil, 0)
	expectETagError(t, "Set with a malformed etag", err, codes.InvalidArgument, codes.FailedPrecondition)

	if err := h.set(k, []byte("2"), &e1, nil, 0); err != nil {
		t.Fatalf("Set with the current etag: %v", err)
	}
	e2 := h.expectValue(t, k, []byte("2")).GetEtag().GetValue()
	if e2 == e1 {
		t.Fatalf("etag unchanged after a write: %q", e2)
	}
	err = h.set(k, []byte("3"), &e1, nil, 0)
	expectETagError(t, "Set with the previous etag", err, codes.FailedPrecondition)

	err = h.del(k, &e1)
	expectETagError(t, "Delete with a stale etag", err, codes.FailedPrecondition)
	h.expectValue(t, k, []byte("2"))
	if err := h.del(k, &e2); err != nil {
		t.Fatalf("Delete with the current etag: %v", err)
	}
	h.expectMissing(t, k)

	err = h.set(k, []byte("4"), &e2, nil, 0)
	expectETagError(t, "Set of a deleted key with an etag", err, codes.FailedPrecondition)
	err = h.del(k, &e2)
	expectETagError(t, "Delete of a missing key with an etag", err, codes.FailedPrecondition)
}

func (h *stateHarness) testFirstWrite(t *testing.T) {
	k := h.key("first-write")
	fw := componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE
	if err := h.set(k, []byte("a"), nil, nil, fw); err != nil {
		t.Fatalf("first-write Set of a new key: %v", err)
	}
	e := h.expectValue(t, k, []byte("a")).GetEtag().GetValue()
	err := h.set(k, []byte("b"), nil, nil, fw)
	expectETagError(t, "first-write Set without etag of an existing key", err, codes.FailedPrecondition)
	h.expectValue(t, k, []byte("a"))
	if err := h.set(k, []byte("c"), &e, nil, fw); err != nil {
		t.Fatalf("first-write Set with the current etag: %v", err)
	}
	h.expectValue(t, k, []byte("c"))
	if err := h.set(k, []byte("d"), nil, nil, componentsv1.StateOptions_CONCURRENCY_LAST_WRITE); err != nil {
		t.Fatalf("last-write Set without etag: %v", err)
	}
	if err := h.del(k, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

func (h *stateHarness) testTransactions(t *testing.T) {
	ctx, cancel := h.ctx()
	defer cancel()
	a, b, c := h.key("tx-a"), h.key("tx-b"), h.key("tx-c")
	h.mustSet(t, c, []byte("to be deleted"))
	setOp := func(k, v string, etag string) *componentsv1.TransactionalStateOperation {
		req := &componentsv1.SetRequest{Key: k, Value: []byte(v)}
		if etag != "" {
			req.Etag = &componentsv1.Etag{Value: etag}
		}
		return &componentsv1.TransactionalStateOperation{Request: &componentsv1.TransactionalStateOperation_Set{Set: req}}
	}
	delOp := func(k string) *componentsv1.TransactionalStateOperation {
		return &componentsv1.TransactionalStateOperation{Request: &componentsv1.TransactionalStateOperation_Delete{Delete: &componentsv1.DeleteRequest{Key: k}}}
	}
	_, err := h.tx.Transact(ctx, &componentsv1.TransactionalStateRequest{Operations: []*componentsv1.TransactionalStateOperation{
		setOp(a, "A", ""), setOp(b, "B", ""), delOp(c),
	}})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
	h.expectValue(t, a, []byte("A"))
	bETag := h.expectValue(t, b, []byte("B")).GetEtag().GetValue()
	h.expectMissing(t, c)

	if !h.caps.etag {
		t.Log("store has no ETAG feature: atomic rollback not checked (no portable way to make one operation fail)")
		return
	}
	// A failing operation (stale etag on b) rolls back every operation.
	_, err = h.tx.Transact(ctx, &componentsv1.TransactionalStateRequest{Operations: []*componentsv1.TransactionalStateOperation{
		setOp(a, "A2", ""), delOp(c), setOp(h.key("tx-d"), "D", ""), setOp(b, "B2", staleETag(bETag)),
	}})
	expectETagError(t, "Transact with a stale etag", err, codes.FailedPrecondition)
	h.expectValue(t, a, []byte("A"))
	h.expectValue(t, b, []byte("B"))
	h.expectMissing(t, h.key("tx-d"))

	_, err = h.tx.Transact(ctx, &componentsv1.TransactionalStateRequest{Operations: []*componentsv1.TransactionalStateOperation{
		delOp(a), setOp(b, "B3", bETag),
	}})
	if err != nil {
		t.Fatalf("Transact with the current etag: %v", err)
	}
	h.expectMissing(t, a)
	h.expectValue(t, b, []byte("B3"))
	if err := h.del(b, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

func (h *stateHarness) testTTL(t *testing.T) {
	short, kept := h.key("ttl-short"), h.key("ttl-overwritten")
	if err := h.set(short, []byte("soon gone"), nil, map[string]string{sdk.TTLMetadataKey: "1"}, 0); err != nil {
		t.Fatalf("Set with ttlInSeconds=1: %v", err)
	}
	if err := h.set(kept, []byte("x"), nil, map[string]string{sdk.TTLMetadataKey: "1"}, 0); err != nil {
		t.Fatalf("Set with ttlInSeconds=1: %v", err)
	}
	// Overwriting without a TTL removes the TTL.
	h.mustSet(t, kept, []byte("kept"))
	if err := h.set(h.key("ttl-long"), []byte("y"), nil, map[string]string{sdk.TTLMetadataKey: "3600"}, 0); err != nil {
		t.Fatalf("Set with ttlInSeconds=3600: %v", err)
	}
	if err := h.set(h.key("ttl-bad"), []byte("y"), nil, map[string]string{sdk.TTLMetadataKey: "soon"}, 0); err == nil {
		t.Errorf("Set with ttlInSeconds=soon succeeded, want an error")
	}
	h.expectValue(t, short, []byte("soon gone"))

	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := h.get(t, short)
		if len(resp.GetData()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with ttlInSeconds=1 still readable after 5 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.expectValue(t, kept, []byte("kept"))
	h.expectValue(t, h.key("ttl-long"), []byte("y"))
	for _, k := range []string{kept, h.key("ttl-long")} {
		if err := h.del(k, nil); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
}

func (h *stateHarness) testConcurrent(t *testing.T) {
	const writers = 8
	if !h.caps.etag {
		// Without etags concurrent last-write sets must all succeed and leave one of the values.
		k := h.key("race-lw")
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() { errs <- h.set(k, []byte(strconv.Itoa(i)), nil, nil, 0) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Set: %v", err)
			}
		}
		got, _ := strconv.Atoi(string(h.get(t, k).GetData()))
		if got < 0 || got >= writers {
			t.Fatalf("value after concurrent sets = %q", h.get(t, k).GetData())
		}
		return
	}

	// Exactly one writer wins per round when all race with the same etag.
	k := h.key("race")
	h.mustSet(t, k, []byte("start"))
	for round := range 3 {
		e := h.get(t, k).GetEtag().GetValue()
		var wg sync.WaitGroup
		results := make(chan error, writers)
		for i := range writers {
			wg.Go(func() { results <- h.set(k, fmt.Appendf(nil, "r%d-w%d", round, i), &e, nil, 0) })
		}
		wg.Wait()
		close(results)
		wins := 0
		for err := range results {
			if err == nil {
				wins++
				continue
			}
			expectETagError(t, "losing concurrent Set", err, codes.FailedPrecondition)
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won with the same etag, want exactly 1", round, wins)
		}
	}

	// A counter incremented with retry-on-mismatch ends exactly right.
	counter := h.key("counter")
	h.mustSet(t, counter, []byte("0"))
	const perWriter = 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range perWriter {
				if err := h.increment(counter); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
	if got := string(h.get(t, counter).GetData()); got != strconv.Itoa(writers*perWriter) {
		t.Fatalf("counter = %s after %d increments", got, writers*perWriter)
	}
}

func (h *stateHarness) increment(key string) error {
	deadline := time.Now().Add(callTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := h.ctx()
		resp, err := h.store.Get(ctx, &componentsv1.GetRequest{Key: key})
		cancel()
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		n, err := strconv.Atoi(string(resp.GetData()))
		if err != nil {
			return fmt.Errorf("counter value %q: %w", resp.GetData(), err)
		}
		err = h.set(key, []byte(strconv.Itoa(n+1)), ptr(resp.GetEtag().GetValue()), nil, 0)
		if err == nil {
			return nil
		}
		if status.Code(err) != codes.FailedPrecondition {
			return fmt.Errorf("set: %w", err)
		}
	}
	return fmt.Errorf("increment of %q kept conflicting for %s", key, callTimeout)
}

// --- query ----------------------------------------------------------------

type queryDoc struct {
	key   string
	State string `json:"state"`
	City  string `json:"city"`
	ID    int    `json:"id"`
	Org   string `json:"org"`
}

func (h *stateHarness) testQuery(t *testing.T) {
	docs := []queryDoc{
		{key: "q1", State: "CA", City: "San Francisco", ID: 1, Org: "Dev"},
		{key: "q2", State: "WA", City: "Seattle", ID: 2, Org: "Finance"},
		{key: "q3", State: "CA", City: "Los Angeles", ID: 3, Org: "Finance"},
		{key: "q4", State: "NY", City: "New York", ID: 4, Org: "Dev"},
		{key: "q5", State: "CA", City: "San Diego", ID: 5, Org: "Ops"},
	}
	for _, d := range docs {
		v, _ := json.Marshal(map[string]any{"run": h.run, "person": map[string]any{"id": d.ID, "org": d.Org}, "state": d.State, "city": d.City})
		h.mustSet(t, h.key(d.key), v)
	}
	h.mustSet(t, h.key("q-not-json"), []byte("not json at all"))
	run := map[string]any{"EQ": map[string]any{"run": h.run}}
	cases := []struct {
		name   string
		filter map[string]any
		sort   []*componentsv1.Sorting
		limit  int64
		want   []string // in order when sort is set
	}{
		{name: "EQ", filter: and(run, map[string]any{"EQ": map[string]any{"state": "CA"}}), want: []string{"q1", "q3", "q5"}},
		{name: "EQ nested number", filter: and(run, map[string]any{"EQ": map[string]any{"person.id": 4}}), want: []string{"q4"}},
		{name: "IN", filter: and(run, map[string]any{"IN": map[string]any{"state": []string{"WA", "NY"}}}), want: []string{"q2", "q4"}},
		{name: "OR", filter: and(run, map[string]any{"OR": []any{
			map[string]any{"EQ": map[string]any{"person.org": "Ops"}},
			map[string]any{"EQ": map[string]any{"city": "Seattle"}},
		}}), want: []string{"q2", "q5"}},
		{name: "sort DESC", filter: and(run, map[string]any{"EQ": map[string]any{"state": "CA"}}),
			sort: []*componentsv1.Sorting{{Key: "person.id", Order: componentsv1.Sorting_DESC}}, want: []string{"q5", "q3", "q1"}},
		{name: "sort ASC two keys, paged", filter: run,
			sort:  []*componentsv1.Sorting{{Key: "person.org", Order: componentsv1.Sorting_ASC}, {Key: "person.id", Order: componentsv1.Sorting_DESC}},
			limit: 2, want: []string{"q4", "q1", "q3", "q2", "q5"}},
		{name: "paged without sort", filter: run, limit: 2, want: []string{"q1", "q2", "q3", "q4", "q5"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := h.runQuery(t, tc.filter, tc.sort, tc.limit)
			want := tc.want
			if tc.sort == nil {
				sort.Strings(got)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("query returned %v, want %v", got, want)
			}
		})
	}
	t.Run("bad filter", func(t *testing.T) {
		ctx, cancel := h.ctx()
		defer cancel()
		_, err := h.query.Query(ctx, &componentsv1.QueryRequest{Query: &componentsv1.Query{
			Filter: map[string]*anypb.Any{"LIKE": {Value: []byte(`{"state":"C%"}`)}},
		}})
		if err == nil {
			t.Fatal("query with unsupported operator LIKE succeeded, want an error")
		}
	})
}

func and(a, b map[string]any) map[string]any {
	return map[string]any{"AND": []any{a, b}}
}

// runQuery runs a query, following page tokens, and returns the short keys.
func (h *stateHarness) runQuery(t *testing.T, filter map[string]any, sorting []*componentsv1.Sorting, limit int64) []string {
	t.Helper()
	pf := map[string]*anypb.Any{}
	for op, v := range filter {
		b, _ := json.Marshal(v)
		pf[op] = &anypb.Any{Value: b}
	}
	var keys []string
	token := ""
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatalf("query paging did not end after 20 pages")
		}
		ctx, cancel := h.ctx()
		resp, err := h.query.Query(ctx, &componentsv1.QueryRequest{Query: &componentsv1.Query{
			Filter: pf, Sort: sorting, Pagination: &componentsv1.Pagination{Limit: limit, Token: token},
		}})
		cancel()
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		if limit > 0 && int64(len(resp.GetItems())) > limit {
			t.Fatalf("query page has %d items, limit %d", len(resp.GetItems()), limit)
		}
		for _, it := range resp.GetItems() {
			if it.GetError() != "" {
				t.Fatalf("query item %q: error %q", it.GetKey(), it.GetError())
			}
			var doc map[string]any
			if err := json.Unmarshal(it.GetData(), &doc); err != nil || doc["run"] != h.run {
				t.Fatalf("query item %q: data %q is not the document written", it.GetKey(), abbreviate(it.GetData()))
			}
			if h.caps.etag && it.GetEtag().GetValue() == "" {
				t.Fatalf("query item %q has no etag", it.GetKey())
			}
			keys = append(keys, trimRun(h.run, it.GetKey()))
		}
		token = resp.GetToken()
		if token == "" || limit == 0 || len(resp.GetItems()) == 0 {
			return keys
		}
	}
}

func trimRun(run, key string) string {
	if len(key) > len(run)+1 && key[:len(run)+1] == run+"-" {
		return key[len(run)+1:]
	}
	return key
}
