package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
)

type plainSecrets struct{ err error }

func (s plainSecrets) Init(context.Context, sdk.Metadata) error { return nil }
func (s plainSecrets) Get(_ context.Context, name string, _ map[string]string) (map[string]string, error) {
	if s.err != nil {
		return nil, s.err
	}
	return map[string]string{name: "v"}, nil
}
func (s plainSecrets) BulkGet(context.Context, map[string]string) (map[string]map[string]string, error) {
	return nil, s.err
}

type multiSecrets struct {
	plainSecrets
	on bool
}

func (m multiSecrets) MultipleKeyValuesPerSecret() bool { return m.on }

func TestSecretFeaturesDerived(t *testing.T) {
	for _, tc := range []struct {
		store sdk.SecretStore
		want  []string
	}{
		{plainSecrets{}, []string{}},
		{multiSecrets{on: false}, []string{}},
		{multiSecrets{on: true}, []string{sdk.FeatureMultipleKeyValuesPerSecret}},
	} {
		if got := sdk.SecretFeatures(tc.store); !slices.Equal(got, tc.want) {
			t.Errorf("SecretFeatures(%T %+v) = %v, want %v", tc.store, tc.store, got, tc.want)
		}
	}
}

func serveSecrets(t *testing.T, newStore func() sdk.SecretStore) componentsv1.SecretStoreClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithSecretStore(newStore), sdk.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop(); _ = closeAll() })
	return componentsv1.NewSecretStoreClient(conn)
}

func TestSecretWireErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("secret x: %w", sdk.ErrSecretNotFound), codes.NotFound},
		{errors.New("backend down"), codes.Internal},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
	} {
		c := serveSecrets(t, func() sdk.SecretStore { return plainSecrets{err: tc.err} })
		ctx := instanceCtx(t, "s")
		if _, err := c.Init(ctx, &componentsv1.SecretStoreInitRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Get(ctx, &componentsv1.GetSecretRequest{Key: "x"})
		if status.Code(err) != tc.want {
			t.Errorf("store error %v → %v, want %v", tc.err, err, tc.want)
		}
	}
}

func TestSecretStoreServedAlongsideState(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	closeAll, err := sdk.Register(srv, sdk.WithStateStore(newFull), sdk.WithSecretStore(func() sdk.SecretStore { return plainSecrets{} }))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); _ = closeAll() })
	names := make([]string, 0)
	for n := range srv.GetServiceInfo() {
		names = append(names, n)
	}
	for _, want := range []string{"dapr.proto.components.v1.StateStore", "dapr.proto.components.v1.SecretStore"} {
		if !slices.Contains(names, want) {
			t.Errorf("services %v lack %s", names, want)
		}
	}
}
