package resiliency

import (
	"context"

	"google.golang.org/grpc"
)

// Conn applies a component's outbound policy to every unary call made on a
// gRPC connection to its plugin: the one place component calls get timeouts,
// retries and the breaker. Streams pass through (they are long-lived
// subscriptions; their consumers handle reconnection). policy is asked on
// every call, so swapped policies apply at once.
type Conn struct {
	cc     grpc.ClientConnInterface
	policy func() Policy
}

// WrapConn returns cc with policy applied to unary calls.
func WrapConn(cc grpc.ClientConnInterface, policy func() Policy) *Conn {
	return &Conn{cc: cc, policy: policy}
}

// Invoke implements grpc.ClientConnInterface.
func (c *Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.policy().Execute(ctx, func(ctx context.Context) error {
		return c.cc.Invoke(ctx, method, args, reply, opts...)
	})
}

// NewStream implements grpc.ClientConnInterface.
func (c *Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, desc, method, opts...)
}

var _ grpc.ClientConnInterface = (*Conn)(nil)
