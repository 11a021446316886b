package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Binding is the bindings.postgresql output binding.
type Binding struct {
	mu   sync.RWMutex
	pool *pgxpool.Pool // nil after close
}

// metadataKeys are the component metadata keys parse reads.
var metadataKeys = []string{"connectionString", "url", "direction"}

// New returns an uninitialised PostgreSQL binding.
func New() *Binding { return &Binding{} }

// parse returns the pool configuration (connectionString, or its older
// name url).
func parse(md sdk.Metadata) (*pgxpool.Config, error) {
	cs := strings.TrimSpace(md["connectionString"])
	if cs == "" {
		cs = strings.TrimSpace(md["url"])
	}
	if cs == "" {
		return nil, errors.New("metadata connectionString is required")
	}
	cfg, err := pgxpool.ParseConfig(cs)
	if err != nil {
		return nil, fmt.Errorf("metadata connectionString: %w", err)
	}
	return cfg, nil
}

// Init opens the pool and checks the server answers.
func (b *Binding) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("opening the pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	b.pool = pool
	return nil
}

// Ping checks the server.
func (b *Binding) Ping(ctx context.Context) error {
	p, err := b.get()
	if err != nil {
		return err
	}
	return p.Ping(ctx)
}

// Close closes the pool.
func (b *Binding) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pool != nil {
		b.pool.Close()
		b.pool = nil
	}
	return nil
}

func (b *Binding) get() (*pgxpool.Pool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.pool == nil {
		return nil, errors.New("connection is closed (operation close), or the binding is not initialised")
	}
	return b.pool, nil
}

// Operations are Dapr's: exec, query and close.
func (b *Binding) Operations() []string { return []string{"exec", "query", "close"} }

// Invoke runs request metadata "sql" with the JSON array "params" as its
// arguments: exec answers metadata rows-affected, query answers the rows as
// a JSON array of arrays; close closes the pool (as in Dapr, later calls fail).
func (b *Binding) Invoke(ctx context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	if req.Operation == "close" {
		return nil, b.Close()
	}
	sql := req.Metadata["sql"]
	if strings.TrimSpace(sql) == "" {
		return nil, fmt.Errorf("metadata sql is required: %w", sdk.ErrBadRequest)
	}
	var args []any
	if p := strings.TrimSpace(req.Metadata["params"]); p != "" {
		if err := json.Unmarshal([]byte(p), &args); err != nil {
			return nil, fmt.Errorf("metadata params: want a JSON array: %v: %w", err, sdk.ErrBadRequest)
		}
	}
	pool, err := b.get()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	md := map[string]string{"operation": req.Operation, "sql": sql, "start-time": start.UTC().Format(time.RFC3339Nano)}
	finish := func() {
		end := time.Now()
		md["end-time"] = end.UTC().Format(time.RFC3339Nano)
		md["duration"] = end.Sub(start).String()
	}
	switch req.Operation {
	case "exec":
		tag, err := pool.Exec(ctx, sql, args...)
		if err != nil {
			return nil, fmt.Errorf("exec: %w", err)
		}
		finish()
		md["rows-affected"] = strconv.FormatInt(tag.RowsAffected(), 10)
		return &sdk.InvokeResponse{Metadata: md}, nil
	case "query":
		rows, err := pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		defer rows.Close()
		out := []any{}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return nil, fmt.Errorf("query: reading a row: %w", err)
			}
			out = append(out, v)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		data, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("query: encoding the rows as JSON: %w", err)
		}
		finish()
		return &sdk.InvokeResponse{Data: data, Metadata: md, ContentType: "application/json"}, nil
	}
	return nil, fmt.Errorf("operation %s: %w", req.Operation, sdk.ErrOperationNotSupported)
}
