package sdk

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc"
)

// InputBinding is what an input binding plugin implements (Dapr's bindings.*
// components that trigger the app: cron, mqtt3, …). Optional capabilities
// are one-method interfaces on the same value: Closer, Pinger.
type InputBinding interface {
	// Init configures the binding from its component metadata. It is called
	// once per component instance, before any other call.
	Init(ctx context.Context, md Metadata) error
	// Read delivers events to h until ctx ends, then returns nil. h may be
	// called concurrently. h returns the app's reply body and nil when the
	// app accepted the event (ack), or an error when it did not (nack): the
	// binding then retries or redelivers as its kind allows (a broker
	// redelivers; a cron tick is simply dropped). An error returned before
	// ctx ends fails the stream (the host opens a new one).
	Read(ctx context.Context, h BindingHandler) error
}

// BindingHandler hands one event to the app; see InputBinding.Read.
type BindingHandler func(ctx context.Context, ev *BindingEvent) ([]byte, error)

// BindingEvent is one event an input binding read.
type BindingEvent struct {
	Data        []byte
	Metadata    map[string]string // delivered to HTTP apps as headers
	ContentType string
}

// OutputBinding is what an output binding plugin implements (bindings.http,
// bindings.redis, …). Optional capabilities: Closer, Pinger.
type OutputBinding interface {
	// Init configures the binding from its component metadata. It is called
	// once per component instance, before any other call.
	Init(ctx context.Context, md Metadata) error
	// Invoke runs one operation. The SDK only calls it with an operation
	// listed by Operations; an unsupported one is refused before.
	Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error)
	// Operations lists the operations Invoke supports ("create", "get", …).
	// It is asked on a value that may not be initialised yet.
	Operations() []string
}

// InvokeRequest is one output binding call.
type InvokeRequest struct {
	Operation string
	Data      []byte
	Metadata  map[string]string // request metadata (sql, key, path, …), plus traceparent/tracestate from the host
}

// InvokeResponse is an output binding's answer; a nil response means "no
// data" (the HTTP API answers 204).
type InvokeResponse struct {
	Data        []byte
	Metadata    map[string]string // returned to HTTP callers as metadata.<k> headers
	ContentType string
}

// Operation names used by Dapr's bindings.
const (
	OperationCreate = "create"
	OperationGet    = "get"
	OperationDelete = "delete"
	OperationList   = "list"
)

// ErrOperationNotSupported is returned (wrapped) for an operation a binding
// does not support. Wire: gRPC InvalidArgument.
var ErrOperationNotSupported = errors.New("operation not supported")

// ErrBadRequest marks an invocation the binding refuses because its input is
// wrong (missing metadata, a path outside the root, …). Wire: gRPC
// InvalidArgument. Wrap it: fmt.Errorf("metadata sql is required: %w", sdk.ErrBadRequest).
var ErrBadRequest = errors.New("bad request")

// WithInputBinding serves an input binding (dapr.proto.components.v1
// InputBinding) under the category "bindings"; newBinding is called once per
// component instance (at Init) and once to check the factory. A plugin may
// also pass WithOutputBinding: both services are then served and the host
// initialises each.
func WithInputBinding(newBinding func() InputBinding) Option {
	return addService("bindings", func(s grpc.ServiceRegistrar, log *slog.Logger) (func() error, error) {
		srv, err := newInputServer(newBinding, log)
		if err != nil {
			return nil, err
		}
		srv.register(s)
		return srv.closeAll, nil
	})
}

// WithOutputBinding serves an output binding (dapr.proto.components.v1
// OutputBinding) under the category "bindings"; newBinding is called once
// per component instance (at Init) and once to read the operations of an
// uninitialised instance.
func WithOutputBinding(newBinding func() OutputBinding) Option {
	return addService("bindings", func(s grpc.ServiceRegistrar, log *slog.Logger) (func() error, error) {
		srv, err := newOutputServer(newBinding, log)
		if err != nil {
			return nil, err
		}
		srv.register(s)
		return srv.closeAll, nil
	})
}
