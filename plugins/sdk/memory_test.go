package sdk

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// deepStore's Init and Ping go deep, like a driver opening a connection.
type deepStore struct{}

func (deepStore) Init(_ context.Context, md Metadata) error {
	if deep(2000) != 2000 {
		return errors.New("recursion lost count")
	}
	if md["fail"] == "true" {
		return errors.New("asked to fail")
	}
	return nil
}

func (deepStore) Ping(context.Context) error { _ = deep(2000); return nil }
func (deepStore) Get(context.Context, *GetRequest) (*GetResponse, error) {
	return &GetResponse{Found: true, Data: []byte("v")}, nil
}
func (deepStore) Set(context.Context, *SetRequest) error       { return nil }
func (deepStore) Delete(context.Context, *DeleteRequest) error { return nil }

//go:noinline
func deep(n int) int {
	var pad [64]byte
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + 1 + int(pad[n%len(pad)])
}

// A server built with reserveStackOptions answers every kind of call as one
// without: Init (success and the store's error), Ping, Get, and the gRPC
// reflection stream the host lists services with.
func TestReserveStackKeepsCallsIntact(t *testing.T) {
	s := grpc.NewServer(reserveStackOptions()...)
	closeAll, err := Register(s, Logger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithStateStore(func() StateStore { return deepStore{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closeAll() }()
	reflection.Register(s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	defer s.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	ctx := metadata.AppendToOutgoingContext(t.Context(), InstanceMetadataKey, "a")
	c := componentsv1.NewStateStoreClient(conn)
	if _, err := c.Init(ctx, &componentsv1.InitRequest{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if _, err := c.Ping(ctx, &componentsv1.PingRequest{}); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	resp, err := c.Get(ctx, &componentsv1.GetRequest{Key: "k"})
	if err != nil || string(resp.GetData()) != "v" {
		t.Fatalf("Get: %q, %v", resp.GetData(), err)
	}
	failing := metadata.AppendToOutgoingContext(t.Context(), InstanceMetadataKey, "b")
	_, err = c.Init(failing, &componentsv1.InitRequest{Metadata: &componentsv1.MetadataRequest{Properties: map[string]string{"fail": "true"}}})
	if err == nil || !strings.Contains(err.Error(), "asked to fail") {
		t.Fatalf("failing Init: %v, want the store's error", err)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	lr, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	var names []string
	for _, s := range lr.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "dapr.proto.components.v1.StateStore") {
		t.Fatalf("reflection lists %v, want the state store", names)
	}
}

func TestReserveStackChoosesCalls(t *testing.T) {
	for _, m := range []string{
		"/dapr.proto.components.v1.StateStore/Init",
		"/dapr.proto.components.v1.PubSub/Ping",
		"/outrigger.components.v1.LockStore/Init",
	} {
		if !reservesUnary(m) {
			t.Errorf("%s: no reserved stack, want one", m)
		}
	}
	for _, m := range []string{
		"/dapr.proto.components.v1.StateStore/Get",
		"/dapr.proto.components.v1.StateStore/Features",
		"/outrigger.components.v1.UnaryBatch/Call",
		"/grpc.health.v1.Health/Check",
	} {
		if reservesUnary(m) {
			t.Errorf("%s: reserved stack, want none (hot or shallow)", m)
		}
	}
	for _, m := range []string{
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/plugin.GRPCStdio/StreamStdio",
		"/plugin.GRPCBroker/StartStream",
	} {
		if !reservesStream(m) {
			t.Errorf("%s: no reserved stack, want one", m)
		}
	}
	for _, m := range []string{
		"/dapr.proto.components.v1.PubSub/PullMessages",
		"/dapr.proto.components.v1.InputBinding/Read",
	} {
		if reservesStream(m) {
			t.Errorf("%s: reserved stack, want none (one per subscription)", m)
		}
	}
}
