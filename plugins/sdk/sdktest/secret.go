package sdktest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// SecretStoreCase describes the store under test and what it must hold.
type SecretStoreCase struct {
	// Metadata is passed to Init.
	Metadata sdk.Metadata
	// Secrets the store must hold, name → key → value. Get must answer each
	// exactly; BulkGet must contain each (it may hold more).
	Secrets map[string]map[string]string
	// MultiValued: the store must advertise MULTIPLE_KEY_VALUES_PER_SECRET
	// with Metadata (and must not without it).
	MultiValued bool
	// MissingEmpty: the store answers a secret it does not hold with
	// {name: ""} (as Dapr's local.env does) instead of gRPC NotFound.
	MissingEmpty bool
	// BadMetadata, when non-nil, must make Init fail.
	BadMetadata sdk.Metadata
}

type secretHarness struct {
	c        SecretStoreCase
	instance string
	store    componentsv1.SecretStoreClient
}

// ExerciseSecretStore checks a secret store against the plugin contract
// through the SDK's real gRPC server: an uninitialised instance is refused,
// Init (and a failing Init for BadMetadata), Features, Ping, Get of every
// expected secret, a missing secret (NotFound), BulkGet containing every
// expected secret and agreeing with Get, concurrent readers, and two
// instances side by side.
func ExerciseSecretStore(t *testing.T, newStore func() sdk.SecretStore, c SecretStoreCase) {
	t.Helper()
	if probe := newStore(); probe == nil {
		t.Fatal("factory returned a nil store")
	} else if cl, ok := probe.(sdk.Closer); ok {
		_ = cl.Close() // never Init'ed; closing must be harmless
	}
	h := &secretHarness{c: c, instance: "conformance-" + randomID()}
	h.store = componentsv1.NewSecretStoreClient(serveSecretBufconn(t, newStore))

	t.Run("uninitialised instance", h.testUninitialised)
	if c.BadMetadata != nil {
		t.Run("bad metadata", h.testBadMetadata)
	}
	ctx, cancel := h.ctx(h.instance)
	_, err := h.store.Init(ctx, &componentsv1.SecretStoreInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: c.Metadata}})
	cancel()
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Run("features", h.testFeatures)
	t.Run("ping", h.testPing)
	t.Run("get", h.testGet)
	t.Run("missing secret", h.testMissing)
	t.Run("bulk", h.testBulk)
	t.Run("concurrent readers", h.testConcurrent)
	t.Run("instances", h.testInstances)
}

func serveSecretBufconn(t *testing.T, newStore func() sdk.SecretStore) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(4 << 20)
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithSecretStore(newStore), sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatalf("sdk.Register: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
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

// ctx bounds one call and names the instance it is for.
func (h *secretHarness) ctx(instance string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	return metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, instance), cancel
}

func (h *secretHarness) get(instance, name string) (map[string]string, error) {
	ctx, cancel := h.ctx(instance)
	defer cancel()
	resp, err := h.store.Get(ctx, &componentsv1.GetSecretRequest{Key: name})
	return resp.GetData(), err
}

func (h *secretHarness) bulk(t *testing.T) map[string]map[string]string {
	t.Helper()
	ctx, cancel := h.ctx(h.instance)
	defer cancel()
	resp, err := h.store.BulkGet(ctx, &componentsv1.BulkGetSecretRequest{})
	if err != nil {
		t.Fatalf("BulkGet: %v", err)
	}
	out := make(map[string]map[string]string, len(resp.GetData()))
	for name, s := range resp.GetData() {
		out[name] = s.GetSecrets()
	}
	return out
}

func (h *secretHarness) testUninitialised(t *testing.T) {
	_, err := h.get("never-initialised-"+randomID(), "x")
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Get on an uninitialised instance: %v, want FailedPrecondition", err)
	}
}

func (h *secretHarness) testBadMetadata(t *testing.T) {
	ctx, cancel := h.ctx("bad-" + randomID())
	defer cancel()
	_, err := h.store.Init(ctx, &componentsv1.SecretStoreInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: h.c.BadMetadata}})
	if err == nil {
		t.Fatalf("Init with %v succeeded, want an error", h.c.BadMetadata)
	}
	if status.Convert(err).Message() == "" {
		t.Fatal("Init failed without a message")
	}
}

func (h *secretHarness) testFeatures(t *testing.T) {
	ctx, cancel := h.ctx(h.instance)
	defer cancel()
	resp, err := h.store.Features(ctx, &componentsv1.FeaturesRequest{})
	if err != nil {
		t.Fatalf("Features: %v", err)
	}
	for _, f := range resp.GetFeatures() {
		if f != sdk.FeatureMultipleKeyValuesPerSecret {
			t.Errorf("unknown secret store feature %q", f)
		}
	}
	if got := slices.Contains(resp.GetFeatures(), sdk.FeatureMultipleKeyValuesPerSecret); got != h.c.MultiValued {
		t.Fatalf("advertises %s = %v, want %v", sdk.FeatureMultipleKeyValuesPerSecret, got, h.c.MultiValued)
	}
}

func (h *secretHarness) testPing(t *testing.T) {
	ctx, cancel := h.ctx(h.instance)
	defer cancel()
	if _, err := h.store.Ping(ctx, &componentsv1.PingRequest{}); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func (h *secretHarness) testGet(t *testing.T) {
	if len(h.c.Secrets) == 0 {
		t.Fatal("the case names no secrets: give the kit at least one the store holds")
	}
	for name, want := range h.c.Secrets {
		got, err := h.get(h.instance, name)
		if err != nil {
			t.Errorf("Get %q: %v", name, err)
			continue
		}
		if !maps.Equal(got, want) {
			t.Errorf("Get %q = %v, want %v", name, got, want)
		}
	}
}

func (h *secretHarness) testMissing(t *testing.T) {
	name := "conformance-missing-" + randomID()
	got, err := h.get(h.instance, name)
	if h.c.MissingEmpty {
		if err != nil {
			t.Fatalf("Get of a missing secret: %v, want {%q: \"\"}", err, name)
		}
		if want := map[string]string{name: ""}; !maps.Equal(got, want) {
			t.Fatalf("Get of a missing secret = %v, want %v", got, want)
		}
		return
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Get of a missing secret: (%v, %v), want gRPC NotFound (return an error wrapping sdk.ErrSecretNotFound)", got, err)
	}
}

func (h *secretHarness) testBulk(t *testing.T) {
	all := h.bulk(t)
	for name, want := range h.c.Secrets {
		if got, ok := all[name]; !ok {
			t.Errorf("BulkGet lacks secret %q", name)
		} else if !maps.Equal(got, want) {
			t.Errorf("BulkGet[%q] = %v, want %v", name, got, want)
		}
	}
	// Every bulk entry must agree with Get (a sample, for huge stores).
	n := 0
	for name, want := range all {
		if n++; n > 200 {
			break
		}
		got, err := h.get(h.instance, name)
		if err != nil {
			t.Errorf("BulkGet lists %q but Get fails: %v", name, err)
		} else if !maps.Equal(got, want) {
			t.Errorf("BulkGet[%q] = %v but Get = %v", name, want, got)
		}
	}
}

func (h *secretHarness) testConcurrent(t *testing.T) {
	names := slices.Sorted(maps.Keys(h.c.Secrets))
	var wg sync.WaitGroup
	errc := make(chan error, 32*len(names))
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, name := range names {
				got, err := h.get(h.instance, name)
				if err != nil {
					errc <- fmt.Errorf("reader %d: Get %q: %w", i, name, err)
					return
				}
				if !maps.Equal(got, h.c.Secrets[name]) {
					errc <- fmt.Errorf("reader %d: Get %q = %v, want %v", i, name, got, h.c.Secrets[name])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func (h *secretHarness) testInstances(t *testing.T) {
	second := "conformance-second-" + randomID()
	ctx, cancel := h.ctx(second)
	_, err := h.store.Init(ctx, &componentsv1.SecretStoreInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: h.c.Metadata}})
	cancel()
	if err != nil {
		t.Fatalf("Init of a second instance: %v", err)
	}
	for name, want := range h.c.Secrets {
		for _, inst := range []string{h.instance, second} {
			got, err := h.get(inst, name)
			if err != nil || !maps.Equal(got, want) {
				t.Fatalf("instance %q: Get %q = (%v, %v), want %v", inst, name, got, err, want)
			}
		}
		break
	}
}
