package sdk_test

import (
	"context"
	"sync/atomic"
	"testing"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/outrigger/outrigger/plugins/sdk"
	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// bulkStore is fullStore plus the bulk capabilities, counting their calls.
type bulkStore struct {
	*fullStore
	bulkGets, bulkSets atomic.Int64
}

func (s *bulkStore) BulkGet(ctx context.Context, reqs []*sdk.GetRequest) ([]sdk.BulkItem, error) {
	s.bulkGets.Add(1)
	out := make([]sdk.BulkItem, len(reqs))
	for i, r := range reqs {
		resp, err := s.Get(ctx, r)
		if err != nil {
			return nil, err
		}
		out[i] = sdk.BulkItem{Key: r.Key, Found: resp.Found, Data: resp.Data, ETag: resp.ETag}
	}
	return out, nil
}

func (s *bulkStore) BulkSet(ctx context.Context, reqs []*sdk.SetRequest) error {
	s.bulkSets.Add(1)
	for _, r := range reqs {
		if err := s.Set(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// serveBulk serves a bulkStore in process, with instance "a" initialised;
// ctx addresses it.
func serveBulk(t *testing.T) (*grpc.ClientConn, *bulkStore, context.Context) {
	t.Helper()
	var store *bulkStore
	conn := serveInProcess(t, func() sdk.StateStore {
		store = &bulkStore{fullStore: newFull().(*fullStore)}
		return store
	})
	ctx := instanceCtx(t, "a")
	st := componentsv1.NewStateStoreClient(conn)
	if _, err := st.Init(ctx, &componentsv1.InitRequest{Metadata: &componentsv1.MetadataRequest{}}); err != nil {
		t.Fatal(err)
	}
	return conn, store, ctx
}

func call(t *testing.T, instance, method string, req proto.Message) *ocomponentsv1.UnaryCall {
	t.Helper()
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return &ocomponentsv1.UnaryCall{Method: method, Request: raw, TimeoutMicros: 5_000_000,
		Metadata: []*ocomponentsv1.MetadataEntry{{Key: sdk.InstanceMetadataKey, Values: []string{instance}}}}
}

// TestUnaryBatchAnswersLikeUnaryCalls sends one batch mixing mergeable gets
// and sets, a conditional set that conflicts, a call to an instance that was
// never initialised and an unknown method, and checks every call's result
// is what the call alone would have answered.
func TestUnaryBatchAnswersLikeUnaryCalls(t *testing.T) {
	conn, store, ctx := serveBulk(t)
	st := componentsv1.NewStateStoreClient(conn)
	if _, err := st.Set(ctx, &componentsv1.SetRequest{Key: "k1", Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	stale := "999"
	calls := []*ocomponentsv1.UnaryCall{
		call(t, "a", componentsv1.StateStore_Get_FullMethodName, &componentsv1.GetRequest{Key: "k1"}),
		call(t, "a", componentsv1.StateStore_Get_FullMethodName, &componentsv1.GetRequest{Key: "missing"}),
		call(t, "a", componentsv1.StateStore_Set_FullMethodName, &componentsv1.SetRequest{Key: "k2", Value: []byte("v2")}),
		call(t, "a", componentsv1.StateStore_Set_FullMethodName, &componentsv1.SetRequest{Key: "k3", Value: []byte("v3")}),
		call(t, "a", componentsv1.StateStore_Get_FullMethodName, &componentsv1.GetRequest{Key: "k1"}),
		call(t, "a", componentsv1.StateStore_Set_FullMethodName, &componentsv1.SetRequest{Key: "k1", Value: []byte("x"), Etag: &componentsv1.Etag{Value: stale}}),
		call(t, "nope", componentsv1.StateStore_Get_FullMethodName, &componentsv1.GetRequest{Key: "k1"}),
		call(t, "a", "/dapr.proto.components.v1.StateStore/NoSuchMethod", &componentsv1.GetRequest{}),
	}
	resp, err := ocomponentsv1.NewUnaryBatchClient(conn).Call(ctx, &ocomponentsv1.UnaryBatchCallRequest{Calls: calls})
	if err != nil {
		t.Fatalf("UnaryBatch.Call: %v", err)
	}
	res := resp.GetResults()
	if len(res) != len(calls) {
		t.Fatalf("%d results for %d calls", len(res), len(calls))
	}
	get := func(i int) *componentsv1.GetResponse {
		t.Helper()
		if res[i].GetCode() != 0 {
			t.Fatalf("call %d failed: %v %s", i, codes.Code(res[i].GetCode()), res[i].GetMessage())
		}
		var g componentsv1.GetResponse
		if err := proto.Unmarshal(res[i].GetResponse(), &g); err != nil {
			t.Fatal(err)
		}
		return &g
	}
	for _, i := range []int{0, 4} {
		if g := get(i); string(g.GetData()) != "v1" || g.GetEtag().GetValue() != "1" {
			t.Errorf("call %d: get k1 = %q etag %q, want v1 etag 1", i, g.GetData(), g.GetEtag().GetValue())
		}
	}
	if g := get(1); len(g.GetData()) != 0 || g.GetEtag() != nil {
		t.Errorf("get of a missing key = %v, want an empty response", g)
	}
	for _, i := range []int{2, 3} {
		if res[i].GetCode() != 0 {
			t.Errorf("call %d (unconditional set) failed: %s", i, res[i].GetMessage())
		}
	}
	if n := store.bulkGets.Load(); n != 1 {
		t.Errorf("the three gets of instance a ran as %d BulkGets, want 1", n)
	}
	if n := store.bulkSets.Load(); n != 0 {
		// The conditional set is in the same group: the merge declines and each set runs alone.
		t.Errorf("sets including a conditional one ran as %d BulkSets, want 0", n)
	}

	// The conflicting set fails alone, with Dapr's etag convention.
	st5 := status.FromProto(&spb.Status{Code: res[5].GetCode(), Message: res[5].GetMessage(), Details: res[5].GetDetails()})
	if st5.Code() != codes.FailedPrecondition {
		t.Errorf("conditional set with a stale etag: %v %q, want FailedPrecondition", st5.Code(), st5.Message())
	}
	if d := st5.Details(); len(d) != 1 {
		t.Errorf("etag mismatch details = %v, want one BadRequest", d)
	} else if br, ok := d[0].(*errdetails.BadRequest); !ok || br.GetFieldViolations()[0].GetField() != "etag" {
		t.Errorf("etag mismatch detail = %v, want a BadRequest on field etag", d[0])
	}

	// The uninitialised instance fails as the unary call does.
	_, uerr := st.Get(metadata.AppendToOutgoingContext(context.Background(), sdk.InstanceMetadataKey, "nope"), &componentsv1.GetRequest{Key: "k1"})
	want := status.Convert(uerr)
	if codes.Code(res[6].GetCode()) != want.Code() || res[6].GetMessage() != want.Message() {
		t.Errorf("batched get on an unknown instance = %v %q; unary = %v %q", codes.Code(res[6].GetCode()), res[6].GetMessage(), want.Code(), want.Message())
	}
	if codes.Code(res[7].GetCode()) != codes.Unimplemented {
		t.Errorf("unknown method: %v %q, want Unimplemented", codes.Code(res[7].GetCode()), res[7].GetMessage())
	}

	// The unconditional sets took effect; the conflicting one did not.
	for k, v := range map[string]string{"k1": "v1", "k2": "v2", "k3": "v3"} {
		g, err := st.Get(ctx, &componentsv1.GetRequest{Key: k})
		if err != nil || string(g.GetData()) != v {
			t.Errorf("after the batch, get %s = %q, %v; want %q", k, g.GetData(), err, v)
		}
	}
}

// TestUnaryBatchMergesUnconditionalSets checks that sets with no etag run as
// one BulkSet and all take effect.
func TestUnaryBatchMergesUnconditionalSets(t *testing.T) {
	conn, store, ctx := serveBulk(t)
	st := componentsv1.NewStateStoreClient(conn)
	keys := []string{"a", "b", "c", "d"}
	var calls []*ocomponentsv1.UnaryCall
	for _, k := range keys {
		calls = append(calls, call(t, "a", componentsv1.StateStore_Set_FullMethodName, &componentsv1.SetRequest{Key: k, Value: []byte("v-" + k)}))
	}
	resp, err := ocomponentsv1.NewUnaryBatchClient(conn).Call(ctx, &ocomponentsv1.UnaryBatchCallRequest{Calls: calls})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		if r.GetCode() != 0 {
			t.Errorf("set %s: %s", keys[i], r.GetMessage())
		}
	}
	if n := store.bulkSets.Load(); n != 1 {
		t.Errorf("four unconditional sets ran as %d BulkSets, want 1", n)
	}
	for _, k := range keys {
		g, err := st.Get(ctx, &componentsv1.GetRequest{Key: k})
		if err != nil || string(g.GetData()) != "v-"+k {
			t.Errorf("get %s = %q, %v", k, g.GetData(), err)
		}
	}
}
