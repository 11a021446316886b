package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// instanceSet holds the component values of one category, one per
// x-component-instance name, created at Init. The configuration and lock
// servers share it.
type instanceSet[T any] struct {
	kind   string // "configuration store", "lock store": for messages
	newT   func() T
	isNil  func(T) bool
	logger *slog.Logger

	mu    sync.RWMutex
	items map[string]T
}

func newInstanceSet[T comparable](kind string, newT func() T, logger *slog.Logger) (*instanceSet[T], error) {
	var zero T
	if newT() == zero {
		return nil, fmt.Errorf("%s factory returned nil", kind)
	}
	return &instanceSet[T]{
		kind: kind, newT: newT, logger: logger, items: map[string]T{},
		isNil: func(v T) bool { return v == zero },
	}, nil
}

// get returns the instance the call is for.
func (s *instanceSet[T]) get(ctx context.Context) (T, error) {
	name := instanceName(ctx)
	s.mu.RLock()
	v, ok := s.items[name]
	s.mu.RUnlock()
	if !ok {
		return v, status.Errorf(codes.FailedPrecondition,
			"%s instance %q is not initialised: call Init first (instance named by gRPC metadata %s)",
			s.kind, name, InstanceMetadataKey)
	}
	return v, nil
}

// init creates, initialises and records the instance named in ctx,
// replacing (and closing) an earlier one of the same name.
func (s *instanceSet[T]) init(ctx context.Context, props map[string]string, initFn func(T, Metadata) error) error {
	name := instanceName(ctx)
	v := s.newT()
	if s.isNil(v) {
		return status.Errorf(codes.Internal, "%s factory returned nil", s.kind)
	}
	md := Metadata(props)
	if md == nil {
		md = Metadata{}
	}
	if err := initFn(v, md); err != nil {
		closeValue(v)
		s.logger.Error("init failed", "instance", name, "err", err)
		return wireError(fmt.Errorf("init %q: %w", name, err))
	}
	s.mu.Lock()
	old, had := s.items[name]
	s.items[name] = v
	s.mu.Unlock()
	if had {
		if c, ok := any(old).(Closer); ok {
			if err := c.Close(); err != nil {
				s.logger.Warn("closing replaced instance", "instance", name, "err", err)
			}
		}
	}
	s.logger.Info("initialised", "instance", name, "kind", s.kind)
	return nil
}

// ping calls Ping on the instance when it is a Pinger.
func (s *instanceSet[T]) ping(ctx context.Context) error {
	v, err := s.get(ctx)
	if err != nil {
		return err
	}
	if p, ok := any(v).(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return wireError(fmt.Errorf("ping: %w", err))
		}
	}
	return nil
}

func (s *instanceSet[T]) closeAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, v := range s.items {
		if c, ok := any(v).(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: %w", name, err))
			}
		}
		delete(s.items, name)
	}
	return errors.Join(errs...)
}

func closeValue(v any) {
	if c, ok := v.(io.Closer); ok {
		_ = c.Close()
	}
}

// peek returns the instance the call is for, if it has been initialised.
func (s *instanceSet[T]) peek(ctx context.Context) (T, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.items[instanceName(ctx)]
	return v, ok
}

func instanceName(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(InstanceMetadataKey); len(v) > 0 {
		return v[0]
	}
	return ""
}
