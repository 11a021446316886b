package sdktest

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// BenchmarkPubSub measures publish → deliver → ack through the SDK's gRPC
// server as a host drives it: b.N messages of 256 bytes published by
// `publishers` concurrent callers to one topic, received on one
// PullMessages stream that acks each message as it arrives. It reports
// msgs/s and the delivery latency p50/p99 (publish call start to receipt).
func BenchmarkPubSub(b *testing.B, newPubSub func() sdk.PubSub, md sdk.Metadata, publishers int) {
	b.Helper()
	lis := bufconn.Listen(4 << 20)
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithPubSub(newPubSub), sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatalf("sdk.Register: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatalf("dialing bufconn: %v", err)
	}
	defer func() { _ = conn.Close(); srv.Stop(); _ = closeAll() }()
	client := componentsv1.NewPubSubClient(conn)
	run := randomID()
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), sdk.InstanceMetadataKey, "bench-"+run))
	defer cancel()
	props := maps.Clone(md)
	if props == nil {
		props = sdk.Metadata{}
	}
	props[sdk.ConsumerIDKey] = "bench-" + run
	if _, err := client.Init(ctx, &componentsv1.PubSubInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: props}}); err != nil {
		b.Fatalf("Init: %v", err)
	}
	topic := "bench" + run
	stream, err := client.PullMessages(ctx)
	if err != nil {
		b.Fatalf("PullMessages: %v", err)
	}
	if err := stream.Send(&componentsv1.PullMessagesRequest{Topic: &componentsv1.Topic{Name: topic}}); err != nil {
		b.Fatalf("PullMessages: %v", err)
	}
	// Warm up: one message must come through before timing starts.
	payload := make([]byte, 256)
	received := make(chan time.Duration, 1024)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				close(received)
				return
			}
			_ = stream.Send(&componentsv1.PullMessagesRequest{AckMessageId: m.GetId()})
			if len(m.GetData()) >= 8 {
				sent := int64(binary.BigEndian.Uint64(m.GetData()))
				received <- time.Duration(time.Now().UnixNano() - sent)
			}
		}
	}()
	for warm := false; !warm; {
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		if _, err := client.Publish(ctx, &componentsv1.PublishRequest{Topic: topic, Data: payload}); err != nil {
			b.Fatalf("Publish: %v", err)
		}
		select {
		case <-received:
			warm = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond) // let stray warm-up messages drain
	for len(received) > 0 {
		<-received
	}

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan struct{}, b.N)
	for range b.N {
		jobs <- struct{}{}
	}
	close(jobs)
	errs := make(chan error, publishers)
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for range jobs {
				binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
				if _, err := client.Publish(ctx, &componentsv1.PublishRequest{Topic: topic, Data: buf}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	lats := make([]time.Duration, 0, b.N)
	timeout := time.After(time.Minute + time.Duration(b.N)*time.Millisecond)
	for len(lats) < b.N {
		select {
		case d, ok := <-received:
			if !ok {
				b.Fatal("subscription stream ended")
			}
			lats = append(lats, d)
		case err := <-errs:
			b.Fatalf("Publish: %v", err)
		case <-timeout:
			b.Fatalf("received %d of %d messages", len(lats), b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	slices.Sort(lats)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
}
