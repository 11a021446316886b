package statee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestGoSDKState drives every state call of the official Go SDK through the
// sidecar against each store.
func TestGoSDKState(t *testing.T) {
	t.Parallel()
	s, stores := threeStores(t)
	cl := s.Client(t)
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			t.Run("crud", func(t *testing.T) { sdkCRUD(ctx, t, cl, st.name) })
			t.Run("bulk", func(t *testing.T) { sdkBulk(ctx, t, cl, st.name) })
			t.Run("transaction", func(t *testing.T) { sdkTransaction(ctx, t, cl, st.name) })
			t.Run("delete-etag", func(t *testing.T) { sdkDeleteETag(ctx, t, cl, st.name) })
			t.Run("ttl", func(t *testing.T) { sdkTTL(ctx, t, cl, st.name) })
			if st.query {
				t.Run("query", func(t *testing.T) { sdkQuery(ctx, t, cl, st.name) })
			}
		})
	}
}

func sdkCRUD(ctx context.Context, t *testing.T, cl dapr.Client, store string) {
	if err := cl.SaveState(ctx, store, "order-1", []byte(`{"id":1,"item":"kayak"}`), nil); err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	item, err := cl.GetState(ctx, store, "order-1", nil)
	if err != nil {
		t.Fatalf("GetState: %v", err)
	}
	if string(item.Value) != `{"id":1,"item":"kayak"}` || item.Etag == "" {
		t.Errorf("GetState = %q etag %q, want the saved value and an etag", item.Value, item.Etag)
	}
	if err := cl.SaveState(ctx, store, "order-1", []byte(`{"id":1,"item":"canoe"}`), nil); err != nil {
		t.Fatalf("SaveState (overwrite): %v", err)
	}
	item2, err := cl.GetState(ctx, store, "order-1", nil)
	if err != nil {
		t.Fatalf("GetState: %v", err)
	}
	if string(item2.Value) != `{"id":1,"item":"canoe"}` || item2.Etag == item.Etag {
		t.Errorf("after overwrite GetState = %q etag %q (old etag %q): want new value and a new etag", item2.Value, item2.Etag, item.Etag)
	}
	// Raw bytes (not JSON) are kept byte for byte through gRPC.
	raw := []byte{0, 1, 2, 0xff, 'x'}
	if err := cl.SaveState(ctx, store, "raw", raw, nil); err != nil {
		t.Fatalf("SaveState raw: %v", err)
	}
	if item, err := cl.GetState(ctx, store, "raw", nil); err != nil || string(item.Value) != string(raw) {
		t.Errorf("GetState raw = %v, %v; want %v", item.Value, err, raw)
	}
	if err := cl.DeleteState(ctx, store, "order-1", nil); err != nil {
		t.Fatalf("DeleteState: %v", err)
	}
	item, err = cl.GetState(ctx, store, "order-1", nil)
	if err != nil || len(item.Value) != 0 || item.Etag != "" {
		t.Errorf("GetState after delete = %q etag %q err %v, want empty", item.Value, item.Etag, err)
	}
	if err := cl.DeleteState(ctx, store, "never-there", nil); err != nil {
		t.Errorf("DeleteState of a missing key: %v (want success, as Dapr)", err)
	}
	// A stale etag on save is a conflict.
	if err := cl.SaveStateWithETag(ctx, store, "raw", []byte("y"), item2.Etag, nil); status.Code(err) != codes.Aborted {
		t.Errorf("SaveStateWithETag with a stale etag: %v, want codes.Aborted", err)
	}
}

func sdkBulk(ctx context.Context, t *testing.T, cl dapr.Client, store string) {
	var items []*dapr.SetStateItem
	for i := range 5 {
		items = append(items, &dapr.SetStateItem{Key: fmt.Sprintf("bulk-%d", i), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	if err := cl.SaveBulkState(ctx, store, items...); err != nil {
		t.Fatalf("SaveBulkState: %v", err)
	}
	keys := []string{"bulk-0", "bulk-1", "bulk-2", "bulk-3", "bulk-4", "bulk-missing"}
	got, err := cl.GetBulkState(ctx, store, keys, nil, 3)
	if err != nil {
		t.Fatalf("GetBulkState: %v", err)
	}
	byKey := map[string]*dapr.BulkStateItem{}
	for _, it := range got {
		byKey[it.Key] = it
	}
	for i := range 5 {
		k := fmt.Sprintf("bulk-%d", i)
		it := byKey[k]
		if it == nil || string(it.Value) != fmt.Sprintf(`{"n":%d}`, i) || it.Etag == "" || it.Error != "" {
			t.Errorf("GetBulkState %s = %+v, want value, etag and no error", k, it)
		}
	}
	if it := byKey["bulk-missing"]; it == nil || len(it.Value) != 0 || it.Error != "" {
		t.Errorf("GetBulkState of a missing key = %+v, want an item with no value and no error", it)
	}
	if err := cl.DeleteBulkState(ctx, store, keys[:4], nil); err != nil {
		t.Fatalf("DeleteBulkState: %v", err)
	}
	got, err = cl.GetBulkState(ctx, store, keys[:5], nil, 0)
	if err != nil {
		t.Fatalf("GetBulkState after delete: %v", err)
	}
	for _, it := range got {
		if want := it.Key == "bulk-4"; (len(it.Value) > 0) != want {
			t.Errorf("after DeleteBulkState of bulk-0..3: %s = %q", it.Key, it.Value)
		}
	}
}

func sdkTransaction(ctx context.Context, t *testing.T, cl dapr.Client, store string) {
	if err := cl.SaveState(ctx, store, "tx-c", []byte(`"c"`), nil); err != nil {
		t.Fatal(err)
	}
	ops := []*dapr.StateOperation{
		{Type: dapr.StateOperationTypeUpsert, Item: &dapr.SetStateItem{Key: "tx-a", Value: []byte(`"a"`)}},
		{Type: dapr.StateOperationTypeUpsert, Item: &dapr.SetStateItem{Key: "tx-b", Value: []byte(`"b"`)}},
		{Type: dapr.StateOperationTypeDelete, Item: &dapr.SetStateItem{Key: "tx-c"}},
	}
	if err := cl.ExecuteStateTransaction(ctx, store, nil, ops); err != nil {
		t.Fatalf("ExecuteStateTransaction: %v", err)
	}
	want := map[string]string{"tx-a": `"a"`, "tx-b": `"b"`, "tx-c": ""}
	for k, v := range want {
		item, err := cl.GetState(ctx, store, k, nil)
		if err != nil || string(item.Value) != v {
			t.Errorf("after the transaction %s = %q (%v), want %q", k, item.Value, err, v)
		}
	}
	// Atomicity: a transaction with one stale etag changes nothing.
	a, err := cl.GetState(ctx, store, "tx-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SaveState(ctx, store, "tx-a", []byte(`"a2"`), nil); err != nil { // makes a.Etag stale
		t.Fatal(err)
	}
	ops = []*dapr.StateOperation{
		{Type: dapr.StateOperationTypeUpsert, Item: &dapr.SetStateItem{Key: "tx-b", Value: []byte(`"b-lost"`)}},
		{Type: dapr.StateOperationTypeUpsert, Item: &dapr.SetStateItem{Key: "tx-a", Value: []byte(`"a-lost"`), Etag: &dapr.ETag{Value: a.Etag}}},
	}
	err = cl.ExecuteStateTransaction(ctx, store, nil, ops)
	if err == nil {
		t.Fatal("a transaction with a stale etag succeeded")
	}
	if c := status.Code(err); c != codes.Aborted {
		t.Errorf("transaction with a stale etag: %v, want codes.Aborted", err)
	}
	for k, v := range map[string]string{"tx-a": `"a2"`, "tx-b": `"b"`} {
		if item, err := cl.GetState(ctx, store, k, nil); err != nil || string(item.Value) != v {
			t.Errorf("after the failed transaction %s = %q (%v), want %q unchanged", k, item.Value, err, v)
		}
	}
}

func sdkDeleteETag(ctx context.Context, t *testing.T, cl dapr.Client, store string) {
	if err := cl.SaveState(ctx, store, "del", []byte(`1`), nil); err != nil {
		t.Fatal(err)
	}
	old, err := cl.GetState(ctx, store, "del", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SaveState(ctx, store, "del", []byte(`2`), nil); err != nil {
		t.Fatal(err)
	}
	cur, err := cl.GetState(ctx, store, "del", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cl.DeleteStateWithETag(ctx, store, "del", &dapr.ETag{Value: old.Etag}, nil, nil)
	if status.Code(err) != codes.Aborted {
		t.Errorf("DeleteStateWithETag with a stale etag: %v, want codes.Aborted", err)
	}
	if item, _ := cl.GetState(ctx, store, "del", nil); string(item.Value) != "2" {
		t.Errorf("after a refused delete the value is %q, want 2", item.Value)
	}
	if err := cl.DeleteStateWithETag(ctx, store, "del", &dapr.ETag{Value: cur.Etag}, nil, nil); err != nil {
		t.Errorf("DeleteStateWithETag with the current etag: %v", err)
	}
	if item, _ := cl.GetState(ctx, store, "del", nil); len(item.Value) != 0 {
		t.Errorf("after delete with etag the value is %q", item.Value)
	}
}

func sdkTTL(ctx context.Context, t *testing.T, cl dapr.Client, store string) {
	if err := cl.SaveState(ctx, store, "ttl", []byte(`"short"`), map[string]string{"ttlInSeconds": "1"}); err != nil {
		t.Fatalf("SaveState with ttlInSeconds: %v", err)
	}
	if err := cl.SaveState(ctx, store, "no-ttl", []byte(`"long"`), nil); err != nil {
		t.Fatal(err)
	}
	saved := time.Now()
	item, err := cl.GetState(ctx, store, "ttl", nil)
	if err != nil || string(item.Value) != `"short"` {
		t.Fatalf("GetState right after save = %q, %v", item.Value, err)
	}
	e2etest.WaitFor(t, 5*time.Second, "the key with ttlInSeconds=1 to expire", func() bool {
		item, err := cl.GetState(ctx, store, "ttl", nil)
		return err == nil && len(item.Value) == 0
	})
	if d := time.Since(saved); d < 900*time.Millisecond {
		t.Errorf("the key expired after %v, before its TTL of 1s", d)
	}
	if item, err := cl.GetState(ctx, store, "no-ttl", nil); err != nil || string(item.Value) != `"long"` {
		t.Errorf("a key without TTL = %q, %v; want it kept", item.Value, err)
	}
}

func sdkQuery(ctx context.Context, t *testing.T, cl dapr.Client, store string) {
	cities := []string{"Lisbon", "Oslo", "Lisbon", "Lima", "Lisbon"}
	for i, c := range cities {
		v := fmt.Sprintf(`{"city":%q,"n":%d}`, c, i)
		if err := cl.SaveState(ctx, store, fmt.Sprintf("q-%d", i), []byte(v), nil); err != nil {
			t.Fatal(err)
		}
	}
	q := `{"filter":{"EQ":{"city":"Lisbon"}},"sort":[{"key":"n","order":"DESC"}]}`
	resp, err := cl.QueryStateAlpha1(ctx, store, q, nil)
	if err != nil {
		t.Fatalf("QueryStateAlpha1: %v", err)
	}
	var keys []string
	for _, r := range resp.Results {
		keys = append(keys, r.Key)
		var v struct{ City string }
		if err := json.Unmarshal(r.Value, &v); err != nil || v.City != "Lisbon" {
			t.Errorf("query result %s = %q", r.Key, r.Value)
		}
	}
	if want := []string{"q-4", "q-2", "q-0"}; !slices.Equal(keys, want) {
		t.Errorf("query keys = %v, want %v", keys, want)
	}
	// Paging: limit 2 then the token.
	q = `{"filter":{"IN":{"city":["Lisbon","Lima"]}},"sort":[{"key":"n"}],"page":{"limit":2}}`
	resp, err = cl.QueryStateAlpha1(ctx, store, q, nil)
	if err != nil {
		t.Fatalf("QueryStateAlpha1 page 1: %v", err)
	}
	if len(resp.Results) != 2 || resp.Token == "" {
		t.Fatalf("page 1: %d results, token %q; want 2 and a token", len(resp.Results), resp.Token)
	}
	keys = []string{resp.Results[0].Key, resp.Results[1].Key}
	q = fmt.Sprintf(`{"filter":{"IN":{"city":["Lisbon","Lima"]}},"sort":[{"key":"n"}],"page":{"limit":2,"token":%q}}`, resp.Token)
	resp, err = cl.QueryStateAlpha1(ctx, store, q, nil)
	if err != nil {
		t.Fatalf("QueryStateAlpha1 page 2: %v", err)
	}
	for _, r := range resp.Results {
		keys = append(keys, r.Key)
	}
	if want := []string{"q-0", "q-2", "q-3", "q-4"}; !slices.Equal(keys, want) {
		t.Errorf("paged query keys = %v, want %v", keys, want)
	}
}
