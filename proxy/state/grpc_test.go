package state

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

type unimplemented struct {
	runtimev1.UnimplementedDaprServer
}

// daprServer composes the block into a Dapr service the way proxy/grpcapi
// does (the block's methods win over the Unimplemented ones).
type daprServer struct {
	*API
	unimplemented
}

// serveDapr serves the block's gRPC methods on loopback and returns a client
// connection to it.
func serveDapr(t testing.TB, api *API) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	runtimev1.RegisterDaprServer(s, daprServer{API: api})
	go func() { _ = s.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		s.Stop()
	})
	return conn
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatusErr checks a gRPC error's code, message and ErrorInfo reason.
func wantStatusErr(t testing.TB, err error, code codes.Code, reason, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || err == nil {
		t.Fatalf("error %v, want status %s", err, code)
	}
	if st.Code() != code {
		t.Fatalf("code %s (%s), want %s", st.Code(), st.Message(), code)
	}
	if !strings.Contains(st.Message(), msg) {
		t.Fatalf("message %q does not contain %q", st.Message(), msg)
	}
	var got string
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			got = ei.GetReason()
		}
	}
	if got != reason {
		t.Fatalf("ErrorInfo reason %q, want %q", got, reason)
	}
}

func TestGRPCErrors(t *testing.T) {
	f := newFixture(t)
	c := runtimev1.NewDaprClient(serveDapr(t, f.api))
	ctx := ctxT(t)
	up := func(key string) *runtimev1.TransactionalStateOperation {
		return &runtimev1.TransactionalStateOperation{OperationType: "upsert", Request: &commonv1.StateItem{Key: key, Value: []byte("1")}}
	}
	del := func(key string) *runtimev1.TransactionalStateOperation {
		return &runtimev1.TransactionalStateOperation{OperationType: "delete", Request: &commonv1.StateItem{Key: key}}
	}
	cases := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
		msg    string
	}{
		{"get unknown store", func() error {
			_, err := c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "nope", Key: "k"})
			return err
		}, codes.InvalidArgument, "DAPR_STATE_NOT_FOUND", "state store nope is not found"},
		{"get illegal key", func() error {
			_, err := c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "mem", Key: "a||b"})
			return err
		}, codes.InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "a||b"},
		{"save empty key", func() error {
			_, err := c.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: "mem", States: []*commonv1.StateItem{{Value: []byte("1")}}})
			return err
		}, codes.InvalidArgument, "ERR_BAD_REQUEST", "state key cannot be empty"},
		{"save illegal key", func() error {
			_, err := c.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: "mem", States: []*commonv1.StateItem{{Key: "x||y", Value: []byte("1")}}})
			return err
		}, codes.InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "x||y"},
		{"save declared JSON that is not", func() error {
			_, err := c.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: "mem", States: []*commonv1.StateItem{{Key: "k", Value: []byte("{"), Metadata: map[string]string{"contentType": "application/json"}}}})
			return err
		}, codes.InvalidArgument, "ERR_BAD_REQUEST", "not valid JSON"},
		{"delete bulk illegal key", func() error {
			_, err := c.DeleteBulkState(ctx, &runtimev1.DeleteBulkStateRequest{StoreName: "mem", States: []*commonv1.StateItem{{Key: "x||y"}}})
			return err
		}, codes.InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "x||y"},
		{"bulk get illegal key", func() error {
			_, err := c.GetBulkState(ctx, &runtimev1.GetBulkStateRequest{StoreName: "mem", Keys: []string{"x||y"}})
			return err
		}, codes.InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "x||y"},
		{"tx not transactional", func() error {
			_, err := c.ExecuteStateTransaction(ctx, &runtimev1.ExecuteStateTransactionRequest{StoreName: "plain", Operations: []*runtimev1.TransactionalStateOperation{up("a")}})
			return err
		}, codes.Internal, "DAPR_STATE_NOT_SUPPORTED", "state store plain doesn't support transactions"},
		{"tx unknown op", func() error {
			_, err := c.ExecuteStateTransaction(ctx, &runtimev1.ExecuteStateTransactionRequest{StoreName: "mem", Operations: []*runtimev1.TransactionalStateOperation{{OperationType: "merge", Request: &commonv1.StateItem{Key: "a"}}}})
			return err
		}, codes.Unimplemented, "ERR_NOT_SUPPORTED_STATE_OPERATION", "operation type merge not supported"},
		{"tx too many", func() error {
			_, err := c.ExecuteStateTransaction(ctx, &runtimev1.ExecuteStateTransactionRequest{StoreName: "small", Operations: []*runtimev1.TransactionalStateOperation{up("a"), del("b"), up("c")}})
			return err
		}, codes.InvalidArgument, "DAPR_STATE_TOO_MANY_TRANSACTIONS", "contains 3 operations"},
		{"query not supported", func() error {
			_, err := c.QueryStateAlpha1(ctx, &runtimev1.QueryStateRequest{StoreName: "plain", Query: "{}"})
			return err
		}, codes.Internal, "DAPR_STATE_NOT_SUPPORTED", "doesn't support query"},
		{"query bad JSON", func() error {
			_, err := c.QueryStateAlpha1(ctx, &runtimev1.QueryStateRequest{StoreName: "mem", Query: "{"})
			return err
		}, codes.Internal, "ERR_STATE_QUERY", "failed to parse JSON query body"},
		{"get plugin down", func() error {
			_, err := c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "down", Key: "k"})
			return err
		}, codes.Internal, "ERR_STATE_GET", "fail to get k from state store down"},
		{"get plugin restarting", func() error {
			_, err := c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "restart", Key: "k"})
			return err
		}, codes.Internal, "ERR_STATE_GET", `plugin "state-mem" is restarting`},
		{"save plugin restarting", func() error {
			_, err := c.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: "restart", States: []*commonv1.StateItem{{Key: "k", Value: []byte("1")}}})
			return err
		}, codes.Internal, "ERR_STATE_SAVE", `plugin "state-mem" is restarting`},
		{"delete plugin down", func() error {
			_, err := c.DeleteState(ctx, &runtimev1.DeleteStateRequest{StoreName: "down", Key: "k"})
			return err
		}, codes.Internal, "ERR_STATE_DELETE", "failed deleting state with key k"},
		{"bulk delete plugin restarting", func() error {
			_, err := c.DeleteBulkState(ctx, &runtimev1.DeleteBulkStateRequest{StoreName: "restart", States: []*commonv1.StateItem{{Key: "a"}, {Key: "b"}}})
			return err
		}, codes.Internal, "ERR_STATE_DELETE", `failed deleting state in state store restart: plugin "state-mem" is restarting`},
		{"bulk get plugin down", func() error {
			_, err := c.GetBulkState(ctx, &runtimev1.GetBulkStateRequest{StoreName: "down", Keys: []string{"a"}})
			return err
		}, codes.Internal, "ERR_STATE_BULK_GET", "failed getting state with keys [a]"},
		{"tx plugin restarting", func() error {
			_, err := c.ExecuteStateTransaction(ctx, &runtimev1.ExecuteStateTransactionRequest{StoreName: "restart", Operations: []*runtimev1.TransactionalStateOperation{up("a")}})
			return err
		}, codes.Internal, "ERR_STATE_TRANSACTION", `plugin "state-mem" is restarting`},
		{"query plugin down", func() error {
			_, err := c.QueryStateAlpha1(ctx, &runtimev1.QueryStateRequest{StoreName: "down", Query: "{}"})
			return err
		}, codes.Internal, "ERR_STATE_QUERY", "failed query in state store down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantStatusErr(t, tc.call(), tc.code, tc.reason, tc.msg)
		})
	}

	// No stores at all.
	nc := runtimev1.NewDaprClient(serveDapr(t, New(Config{AppID: testAppID, Stores: testStores{}})))
	_, err := nc.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "s", Key: "k"})
	wantStatusErr(t, err, codes.FailedPrecondition, "DAPR_STATE_NOT_CONFIGURED", "state store is not configured")
}

func TestGRPCETags(t *testing.T) {
	f := newFixture(t)
	c := runtimev1.NewDaprClient(serveDapr(t, f.api))
	ctx := ctxT(t)
	save := func(key, value string, etag *commonv1.Etag, opts *commonv1.StateOptions) error {
		_, err := c.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: "mem", States: []*commonv1.StateItem{{Key: key, Value: []byte(value), Etag: etag, Options: opts}}})
		return err
	}
	if err := save("k", "v1", nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "mem", Key: "k"})
	if err != nil || string(got.GetData()) != "v1" || got.GetEtag() == "" {
		t.Fatalf("get: %v %v", got, err)
	}
	etag := got.GetEtag()
	wantStatusErr(t, save("k", "v2", &commonv1.Etag{Value: "999"}, nil), codes.Aborted, "ERR_STATE_SAVE", "failed saving state in state store mem: possible etag mismatch")
	wantStatusErr(t, save("k", "v2", &commonv1.Etag{Value: "bad"}, nil), codes.InvalidArgument, "ERR_STATE_SAVE", "invalid etag value")
	wantStatusErr(t, save("k", "v2", nil, &commonv1.StateOptions{Concurrency: commonv1.StateOptions_CONCURRENCY_FIRST_WRITE}), codes.Aborted, "ERR_STATE_SAVE", "etag mismatch")
	_, err = c.DeleteState(ctx, &runtimev1.DeleteStateRequest{StoreName: "mem", Key: "k", Etag: &commonv1.Etag{Value: "999"}})
	wantStatusErr(t, err, codes.Aborted, "ERR_STATE_DELETE", "failed deleting state with key k: possible etag mismatch")
	_, err = c.DeleteBulkState(ctx, &runtimev1.DeleteBulkStateRequest{StoreName: "mem", States: []*commonv1.StateItem{{Key: "k", Etag: &commonv1.Etag{Value: "bad"}}, {Key: "j"}}})
	wantStatusErr(t, err, codes.InvalidArgument, "ERR_STATE_DELETE", "failed deleting state in state store mem: invalid etag value")
	_, err = c.ExecuteStateTransaction(ctx, &runtimev1.ExecuteStateTransactionRequest{StoreName: "mem", Operations: []*runtimev1.TransactionalStateOperation{
		{OperationType: "upsert", Request: &commonv1.StateItem{Key: "t", Value: []byte("x")}},
		{OperationType: "delete", Request: &commonv1.StateItem{Key: "k", Etag: &commonv1.Etag{Value: "999"}}},
	}})
	wantStatusErr(t, err, codes.Aborted, "ERR_STATE_TRANSACTION", "possible etag mismatch")

	if err := save("k", "v3", &commonv1.Etag{Value: etag}, &commonv1.StateOptions{Concurrency: commonv1.StateOptions_CONCURRENCY_FIRST_WRITE, Consistency: commonv1.StateOptions_CONSISTENCY_STRONG}); err != nil {
		t.Fatalf("save with the right etag: %v", err)
	}
	if o := f.mem.lastSet.GetOptions(); o.GetConcurrency() != componentsv1.StateOptions_CONCURRENCY_FIRST_WRITE || o.GetConsistency() != componentsv1.StateOptions_CONSISTENCY_STRONG {
		t.Errorf("options %v", o)
	}
	got, _ = c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "mem", Key: "k", Consistency: commonv1.StateOptions_CONSISTENCY_EVENTUAL})
	if f.mem.lastGet.GetConsistency() != componentsv1.StateOptions_CONSISTENCY_EVENTUAL {
		t.Errorf("consistency not passed")
	}
	_, err = c.DeleteState(ctx, &runtimev1.DeleteStateRequest{StoreName: "mem", Key: "k", Etag: &commonv1.Etag{Value: got.GetEtag()}, Metadata: map[string]string{"m": "1"}})
	if err != nil || f.mem.lastDel.GetMetadata()["m"] != "1" {
		t.Fatalf("delete with the right etag: %v (%v)", err, f.mem.lastDel)
	}
	got, err = c.GetState(ctx, &runtimev1.GetStateRequest{StoreName: "mem", Key: "k"})
	if err != nil || got.GetData() != nil || got.GetEtag() != "" {
		t.Fatalf("missing key: %v %v", got, err)
	}
}

// TestGRPCRawValuesAndBulk: gRPC stores raw bytes (no JSON wrapping); bulk
// get/delete, transactions and query over gRPC.
func TestGRPCRawValuesAndBulk(t *testing.T) {
	f := newFixture(t)
	c := runtimev1.NewDaprClient(serveDapr(t, f.api))
	ctx := ctxT(t)
	_, err := c.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: "mem", States: []*commonv1.StateItem{
		{Key: "a", Value: []byte("raw a"), Metadata: map[string]string{"ttlInSeconds": "10"}},
		{Key: "b", Value: []byte(`{"city":"Oslo"}`), Metadata: map[string]string{"contentType": "application/json"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := f.mem.raw("myapp||a"); string(raw) != "raw a" {
		t.Errorf("stored %q", raw)
	}
	bulk, err := c.GetBulkState(ctx, &runtimev1.GetBulkStateRequest{StoreName: "mem", Keys: []string{"a", "nope", "b"}, Parallelism: 3, Metadata: map[string]string{"q": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	it := bulk.GetItems()
	if len(it) != 3 || it[0].GetKey() != "a" || string(it[0].GetData()) != "raw a" || it[0].GetEtag() == "" || it[0].GetMetadata()["ttlExpireTime"] == "" ||
		it[1].GetKey() != "nope" || it[1].GetData() != nil || it[2].GetKey() != "b" {
		t.Fatalf("bulk items %v", it)
	}
	if f.mem.lastBulk.GetOptions().GetParallelism() != 3 || f.mem.lastBulk.GetItems()[0].GetMetadata()["q"] != "1" {
		t.Errorf("bulk request %v", f.mem.lastBulk)
	}
	q, err := c.QueryStateAlpha1(ctx, &runtimev1.QueryStateRequest{StoreName: "mem", Query: `{"filter":{"EQ":{"city":"Oslo"}}}`, Metadata: map[string]string{"m": "1"}})
	if err != nil || len(q.GetResults()) != 1 || q.GetResults()[0].GetKey() != "b" || q.GetResults()[0].GetEtag() == "" || f.mem.lastQuery.GetMetadata()["m"] != "1" {
		t.Fatalf("query %v %v", q, err)
	}
	q, err = c.QueryStateAlpha1(ctx, &runtimev1.QueryStateRequest{StoreName: "mem", Query: `{"filter":{"EQ":{"city":"Rome"}}}`})
	if err != nil || len(q.GetResults()) != 0 {
		t.Fatalf("empty query %v %v", q, err)
	}
	_, err = c.ExecuteStateTransaction(ctx, &runtimev1.ExecuteStateTransactionRequest{StoreName: "mem", Metadata: map[string]string{"m": "2"}, Operations: []*runtimev1.TransactionalStateOperation{
		{OperationType: "upsert", Request: &commonv1.StateItem{Key: "c", Value: []byte{0xff, 0x00}}},
		{OperationType: "delete", Request: &commonv1.StateItem{Key: "a"}},
	}})
	if err != nil || f.mem.lastTx.GetMetadata()["m"] != "2" {
		t.Fatalf("tx: %v", err)
	}
	if raw, _ := f.mem.raw("myapp||c"); string(raw) != "\xff\x00" {
		t.Errorf("tx stored %q", raw)
	}
	_, err = c.DeleteBulkState(ctx, &runtimev1.DeleteBulkStateRequest{StoreName: "mem", States: []*commonv1.StateItem{{Key: "b"}, {Key: "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := f.mem.raw("myapp||" + k); ok {
			t.Errorf("%s still stored", k)
		}
	}
	// The plugin without Bulk* RPCs: sequential sets and deletes, parallel gets.
	_, err = c.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: "plain", States: []*commonv1.StateItem{{Key: "x", Value: []byte("1")}, {Key: "y", Value: []byte("2")}}})
	if err != nil {
		t.Fatal(err)
	}
	bulk, err = c.GetBulkState(ctx, &runtimev1.GetBulkStateRequest{StoreName: "plain", Keys: []string{"x", "y"}})
	if err != nil || len(bulk.GetItems()) != 2 || string(bulk.GetItems()[1].GetData()) != "2" {
		t.Fatalf("plain bulk %v %v", bulk, err)
	}
	if _, err = c.DeleteBulkState(ctx, &runtimev1.DeleteBulkStateRequest{StoreName: "plain", States: []*commonv1.StateItem{{Key: "x"}, {Key: "y"}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.plain.raw("myapp||y"); ok {
		t.Error("plain y still stored")
	}
}
