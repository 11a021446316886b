package host

import (
	"context"
	"testing"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc/metadata"
)

// BenchmarkConn compares a Get through Component.Conn with the same Get on
// the plugin's raw connection (metadata added by hand): the difference is
// the host's per-call cost.
func BenchmarkConn(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	c, err := e.host.Provision(ctx, comp("bench", "state.memory"))
	if err != nil {
		b.Fatal(err)
	}
	req := &componentsv1.GetRequest{Key: "k"}
	b.Run("component", func(b *testing.B) {
		cl := componentsv1.NewStateStoreClient(c.Conn())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cl.Get(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		cl := componentsv1.NewStateStoreClient(c.plugin.conn.Load())
		mctx := metadata.AppendToOutgoingContext(ctx, InstanceMetadataKey, "bench")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cl.Get(mctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
