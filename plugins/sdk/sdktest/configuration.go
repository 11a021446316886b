package sdktest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/outrigger/outrigger/plugins/sdk"
	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// ConfigurationSetter writes one item to the store's backend directly (as an
// operator or another program would), in the backend's own format, so that
// Get answers value and version for key. The kit uses it to seed items and
// to make the changes a subscription must see.
type ConfigurationSetter func(ctx context.Context, key, value, version string) error

// changeTimeout bounds how long a subscription may take to see a change.
const changeTimeout = 10 * time.Second

// ExerciseConfigurationStore checks a configuration store against the plugin
// contract through a real gRPC pair: an uninitialised instance is refused,
// Init, Features and Ping work, Get returns the items set through set (with
// their versions) and leaves missing keys out, and a subscription — on named
// keys and on every key — goes live, then sees changes made through set, and
// ends when the subscriber closes its stream. Keys start with a random run id,
// so stores on shared servers may be reused.
func ExerciseConfigurationStore(t *testing.T, newStore func() sdk.ConfigurationStore, md sdk.Metadata, set ConfigurationSetter) {
	t.Helper()
	if set == nil {
		t.Fatal("ExerciseConfigurationStore needs a ConfigurationSetter")
	}
	conn := serveOption(t, sdk.WithConfigurationStore(newStore))
	c := ocomponentsv1.NewConfigurationStoreClient(conn)
	instance := "conformance-" + randomID()
	run := "conf-" + randomID()
	key := func(name string) string { return run + "-" + name }
	ctx := func() (context.Context, context.CancelFunc) { return instanceCtx(instance, callTimeout) }
	setItem := func(t *testing.T, k, value, version string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if err := set(cctx, k, value, version); err != nil {
			t.Fatalf("setting %s in the backend: %v", k, err)
		}
	}

	t.Run("uninitialised instance", func(t *testing.T) {
		cctx, cancel := instanceCtx("never-initialised-"+randomID(), callTimeout)
		defer cancel()
		_, err := c.Get(cctx, &ocomponentsv1.ConfigurationStoreGetRequest{Keys: []string{"x"}})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("Get on an uninitialised instance: want FailedPrecondition, got %v", err)
		}
	})

	cctx, cancel := ctx()
	_, err := c.Init(cctx, &ocomponentsv1.ConfigurationStoreInitRequest{Metadata: &ocomponentsv1.ComponentMetadata{Properties: md}})
	cancel()
	if err != nil {
		t.Fatalf("Init: %v", err)
	}

	t.Run("features and ping", func(t *testing.T) {
		cctx, cancel := ctx()
		defer cancel()
		if _, err := c.Features(cctx, &ocomponentsv1.ConfigurationStoreFeaturesRequest{}); err != nil {
			t.Fatalf("Features: %v", err)
		}
		if _, err := c.Ping(cctx, &ocomponentsv1.ConfigurationStorePingRequest{}); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})

	t.Run("get", func(t *testing.T) {
		setItem(t, key("a"), "alpha", "1")
		setItem(t, key("b"), "beta ünïcode", "7")
		cctx, cancel := ctx()
		defer cancel()
		resp, err := c.Get(cctx, &ocomponentsv1.ConfigurationStoreGetRequest{Keys: []string{key("a"), key("b"), key("missing")}})
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		items := resp.GetItems()
		checkItem(t, items, key("a"), "alpha", "1")
		checkItem(t, items, key("b"), "beta ünïcode", "7")
		if it, ok := items[key("missing")]; ok {
			t.Errorf("missing key reported as %v; want it left out", it)
		}
		if len(items) != 2 {
			t.Errorf("Get of 3 keys (1 missing) returned %d items: %v", len(items), items)
		}
	})

	t.Run("get all keys", func(t *testing.T) {
		setItem(t, key("all"), "everything", "3")
		cctx, cancel := ctx()
		defer cancel()
		resp, err := c.Get(cctx, &ocomponentsv1.ConfigurationStoreGetRequest{})
		if err != nil {
			t.Fatalf("Get with no keys: %v", err)
		}
		checkItem(t, resp.GetItems(), key("all"), "everything", "3")
	})

	t.Run("subscribe to keys", func(t *testing.T) {
		setItem(t, key("watched"), "v0", "1")
		sub := subscribe(t, c, instance, []string{key("watched")})
		setItem(t, key("other"), "not watched", "1")
		setItem(t, key("watched"), "v1", "2")
		got := sub.waitFor(t, key("watched"), "v1")
		if got.GetVersion() != "2" {
			t.Errorf("update of %s: version %q, want \"2\"", key("watched"), got.GetVersion())
		}
		if it, ok := sub.seen[key("other")]; ok {
			t.Errorf("subscription to %s reported unwatched key %s = %v", key("watched"), key("other"), it)
		}
		sub.close(t)
	})

	t.Run("subscribe to every key", func(t *testing.T) {
		sub := subscribe(t, c, instance, nil)
		setItem(t, key("any"), "seen", "5")
		sub.waitFor(t, key("any"), "seen")
		sub.close(t)
	})

	t.Run("resubscribe after close", func(t *testing.T) {
		// Closed subscriptions must not break later ones (the store released them).
		for i := range 3 {
			sub := subscribe(t, c, instance, []string{key("again")})
			v := "round-" + string(rune('a'+i))
			setItem(t, key("again"), v, "1")
			sub.waitFor(t, key("again"), v)
			sub.close(t)
		}
	})
}

func checkItem(t *testing.T, items map[string]*ocomponentsv1.ConfigurationItem, k, value, version string) {
	t.Helper()
	it, ok := items[k]
	if !ok {
		t.Errorf("item %s missing from %v", k, items)
		return
	}
	if it.GetValue() != value || it.GetVersion() != version {
		t.Errorf("item %s = (%q, version %q), want (%q, version %q)", k, it.GetValue(), it.GetVersion(), value, version)
	}
}

// subscription is an open Subscribe stream.
type subscription struct {
	cancel context.CancelFunc
	msgs   chan *ocomponentsv1.ConfigurationStoreSubscribeResponse
	errc   chan error
	seen   map[string]*ocomponentsv1.ConfigurationItem
}

// subscribe opens a stream and waits for its first (ready) message.
func subscribe(t *testing.T, c ocomponentsv1.ConfigurationStoreClient, instance string, keys []string) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ctx = metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, instance)
	stream, err := c.Subscribe(ctx, &ocomponentsv1.ConfigurationStoreSubscribeRequest{Keys: keys})
	if err != nil {
		cancel()
		t.Fatalf("Subscribe: %v", err)
	}
	s := &subscription{cancel: cancel, msgs: make(chan *ocomponentsv1.ConfigurationStoreSubscribeResponse, 64),
		errc: make(chan error, 1), seen: map[string]*ocomponentsv1.ConfigurationItem{}}
	t.Cleanup(cancel)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				s.errc <- err
				close(s.msgs)
				return
			}
			s.msgs <- m
		}
	}()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			t.Fatalf("subscription ended before going live: %v", <-s.errc)
		}
		if len(m.GetItems()) != 0 {
			t.Fatalf("first message of a subscription must be the empty ready message, got items %v", m.GetItems())
		}
	case <-time.After(changeTimeout):
		t.Fatalf("subscription did not go live within %s (no ready message)", changeTimeout)
	}
	return s
}

// waitFor reads updates until key has value.
func (s *subscription) waitFor(t *testing.T, key, value string) *ocomponentsv1.ConfigurationItem {
	t.Helper()
	deadline := time.After(changeTimeout)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("subscription ended while waiting for %s=%q: %v", key, value, <-s.errc)
			}
			for k, it := range m.GetItems() {
				s.seen[k] = it
			}
			if it, ok := m.GetItems()[key]; ok && it.GetValue() == value {
				return it
			}
		case <-deadline:
			t.Fatalf("subscription did not see %s=%q within %s (saw %v)", key, value, changeTimeout, s.seen)
		}
	}
}

// close cancels the stream and checks it ends.
func (s *subscription) close(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.errc:
		if status.Code(err) != codes.Canceled && !errors.Is(err, io.EOF) {
			t.Errorf("closing a subscription: stream ended with %v", err)
		}
	case <-time.After(callTimeout):
		t.Error("subscription stream did not end after cancel")
	}
}

func instanceCtx(instance string, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	return metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, instance), cancel
}

// serveOption serves one SDK option over bufconn and returns a client
// connection; everything is stopped and closed at test cleanup.
func serveOption(t *testing.T, opt sdk.Option) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, opt, sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatalf("sdk.Register: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dialing bufconn: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		if err := closeAll(); err != nil {
			t.Errorf("closing components: %v", err)
		}
	})
	return conn
}
