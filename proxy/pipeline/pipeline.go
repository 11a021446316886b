package pipeline

import (
	"fmt"
	"net/http"

	"google.golang.org/grpc"
)

// Filter is one concern of the pipeline. A nil form means the filter does not
// apply to that protocol.
type Filter struct {
	Name   string
	HTTP   func(next http.Handler) http.Handler
	Unary  grpc.UnaryServerInterceptor
	Stream grpc.StreamServerInterceptor
}

// Chain is a built pipeline.
type Chain struct {
	names  []string
	http   []func(http.Handler) http.Handler
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
}

// New orders filters by Order. A filter whose name is not in the order, a
// duplicate, or the terminal router given as a filter, is an error.
func New(filters ...Filter) (*Chain, error) {
	byName := make(map[string]Filter, len(filters))
	for _, f := range filters {
		pos := -1
		for i, e := range order {
			if e.Name == f.Name {
				pos = i
			}
		}
		switch {
		case pos < 0:
			return nil, fmt.Errorf("pipeline: filter %q is not in the order (proxy/pipeline/order.go)", f.Name)
		case f.Name == Terminal:
			return nil, fmt.Errorf("pipeline: %q is terminal and cannot be a filter", f.Name)
		}
		if _, dup := byName[f.Name]; dup {
			return nil, fmt.Errorf("pipeline: filter %q given twice", f.Name)
		}
		byName[f.Name] = f
	}
	c := &Chain{}
	for _, e := range order {
		f, ok := byName[e.Name]
		if !ok {
			continue
		}
		c.names = append(c.names, f.Name)
		if f.HTTP != nil {
			c.http = append(c.http, f.HTTP)
		}
		if f.Unary != nil {
			c.unary = append(c.unary, f.Unary)
		}
		if f.Stream != nil {
			c.stream = append(c.stream, f.Stream)
		}
	}
	return c, nil
}

// Names lists the enabled filters in order, then the terminal router.
func (c *Chain) Names() []string { return append(append([]string(nil), c.names...), Terminal) }

// HTTP wraps the router: the first filter in the order runs first.
func (c *Chain) HTTP(router http.Handler) http.Handler {
	h := router
	for i := len(c.http) - 1; i >= 0; i-- {
		h = c.http[i](h)
	}
	return h
}

// GRPCOptions returns server options installing the chain's interceptors in order.
func (c *Chain) GRPCOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(c.unary...), grpc.ChainStreamInterceptor(c.stream...)}
}
