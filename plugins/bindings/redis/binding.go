package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/internal/redisconf"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// Binding is the bindings.redis output binding.
type Binding struct {
	client *redis.Client
}

// metadataKeys are the component metadata keys parse reads.
var metadataKeys = []string{"redisHost", "redisUsername", "redisPassword", "redisDB", "enableTLS", "dialTimeout", "direction"}

// New returns an uninitialised Redis binding.
func New() *Binding { return &Binding{} }

func parse(md sdk.Metadata) (*redis.Options, error) {
	o := &redis.Options{DialTimeout: 5 * time.Second}
	if err := redisconf.Node(md, o, ""); err != nil {
		return nil, err
	}
	// bindings.redis documents only dialTimeout of the tuning keys (see
	// README.md) and reads it only as a positive Go duration, so it does not
	// use redisconf.Standalone: go-redis's defaults apply to the rest, and a
	// comma-separated redisHost is not refused here but fails at connect.
	if v := strings.TrimSpace(md["dialTimeout"]); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("metadata dialTimeout=%q: want a duration such as 5s", v)
		}
		o.DialTimeout = d
	}
	return o, nil
}

// Init connects and checks the server answers.
func (b *Binding) Init(ctx context.Context, md sdk.Metadata) error {
	o, err := parse(md)
	if err != nil {
		return err
	}
	c := redis.NewClient(o)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return fmt.Errorf("connecting to Redis at %s: %w", o.Addr, err)
	}
	b.client = c
	return nil
}

// Ping checks the connection.
func (b *Binding) Ping(ctx context.Context) error { return b.client.Ping(ctx).Err() }

// Close closes the client.
func (b *Binding) Close() error {
	if b.client == nil {
		return nil
	}
	return b.client.Close()
}

// Operations are Dapr's: create, get, delete and increment.
func (b *Binding) Operations() []string {
	return []string{sdk.OperationCreate, sdk.OperationGet, sdk.OperationDelete, "increment"}
}

// ttl reads request metadata ttlInSeconds (0 = none).
func ttl(md map[string]string) (time.Duration, error) {
	v, ok := md["ttlInSeconds"]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("metadata ttlInSeconds=%q: want whole seconds: %w", v, sdk.ErrBadRequest)
	}
	return time.Duration(n) * time.Second, nil
}

// Invoke runs one command on request metadata "key": create = SET (with
// ttlInSeconds as EX), get = GET (no data when missing), delete = DEL,
// increment = INCR (with ttlInSeconds as EXPIRE).
func (b *Binding) Invoke(ctx context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	if b.client == nil {
		return nil, errors.New("redis binding is not initialised")
	}
	key := req.Metadata["key"]
	if key == "" {
		return nil, fmt.Errorf("metadata key is required: %w", sdk.ErrBadRequest)
	}
	exp, err := ttl(req.Metadata)
	if err != nil {
		return nil, err
	}
	switch req.Operation {
	case sdk.OperationCreate:
		if err := b.client.Set(ctx, key, req.Data, exp).Err(); err != nil {
			return nil, fmt.Errorf("SET %s: %w", key, err)
		}
		return nil, nil
	case sdk.OperationGet:
		data, err := b.client.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", key, err)
		}
		return &sdk.InvokeResponse{Data: data}, nil
	case sdk.OperationDelete:
		if err := b.client.Del(ctx, key).Err(); err != nil {
			return nil, fmt.Errorf("DEL %s: %w", key, err)
		}
		return nil, nil
	case "increment":
		if _, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, key)
			if exp > 0 {
				p.Expire(ctx, key, exp)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("INCR %s: %w", key, err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("operation %s: %w", req.Operation, sdk.ErrOperationNotSupported)
}
