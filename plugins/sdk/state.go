package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Metadata is a component's configuration properties (Component YAML
// spec.metadata, resolved by the host).
type Metadata map[string]string

// StateStore is what every state plugin implements. Optional capabilities
// (ETagger, Transactioner, Querier, TTLer, Bulk*, Closer, Pinger) are extra
// one-method interfaces on the same value; the SDK finds them by type
// assertion and derives the advertised features from them.
type StateStore interface {
	// Init configures the store from its component metadata. It is called
	// once per component instance, before any other call.
	Init(ctx context.Context, md Metadata) error
	// Get reads a key. A missing key is (&GetResponse{}, nil) with Found=false.
	Get(ctx context.Context, req *GetRequest) (*GetResponse, error)
	// Set writes a key, honouring ETag and Concurrency when the store is an ETagger.
	Set(ctx context.Context, req *SetRequest) error
	// Delete removes a key, honouring ETag when the store is an ETagger.
	// Deleting a missing key without an etag is not an error.
	Delete(ctx context.Context, req *DeleteRequest) error
}

// Concurrency and consistency values carried in requests, as Dapr spells them.
const (
	FirstWrite = "first-write"
	LastWrite  = "last-write"
	Eventual   = "eventual"
	Strong     = "strong"
)

// GetRequest reads one key.
type GetRequest struct {
	Key         string
	Metadata    map[string]string
	Consistency string // "eventual", "strong" or ""
}

// GetResponse is the result of a Get. Found is false for a missing key.
type GetResponse struct {
	Found       bool
	Data        []byte
	ETag        string
	Metadata    map[string]string
	ContentType string
}

// SetRequest writes one key.
type SetRequest struct {
	Key   string
	Value []byte
	// ETag is nil when the caller sent none (an empty etag on the wire is
	// normalised to nil by the SDK).
	ETag     *string
	Metadata map[string]string
	// Concurrency is "first-write", "last-write" or "" (= last-write).
	// Under first-write a Set without an etag fails with ErrETagMismatch
	// when the key already exists.
	Concurrency string
	Consistency string
	ContentType string
}

// DeleteRequest removes one key.
type DeleteRequest struct {
	Key         string
	ETag        *string // nil = none
	Metadata    map[string]string
	Concurrency string
	Consistency string
}

// ETagger is a marker: the store enforces etags (feature "ETAG").
type ETagger interface{ ETags() }

// Transactioner applies operations atomically (feature "TRANSACTIONAL"):
// either all apply or none do.
type Transactioner interface {
	Transact(ctx context.Context, ops []TxOp, md map[string]string) error
}

// TxOp is one transactional operation; exactly one of Set and Delete is non-nil.
type TxOp struct {
	Set    *SetRequest
	Delete *DeleteRequest
}

// Querier runs Dapr state queries (feature "QUERY_API").
type Querier interface {
	Query(ctx context.Context, q *Query) (*QueryResponse, error)
}

// TTLer is a marker: the store honours the request metadata "ttlInSeconds"
// (feature "TTL"). Use ParseTTL to read it.
type TTLer interface{ TTL() }

// BulkGetter reads many keys at once. Without it the SDK loops over Get.
type BulkGetter interface {
	BulkGet(ctx context.Context, reqs []*GetRequest) ([]BulkItem, error)
}

// BulkSetter writes many keys at once. Without it the SDK loops over Set.
type BulkSetter interface {
	BulkSet(ctx context.Context, reqs []*SetRequest) error
}

// BulkDeleter removes many keys at once. Without it the SDK loops over Delete.
type BulkDeleter interface {
	BulkDelete(ctx context.Context, reqs []*DeleteRequest) error
}

// Closer is optional cleanup, called when the plugin shuts down.
type Closer = io.Closer

// Pinger checks the backend is reachable. Without it Ping always succeeds.
type Pinger interface {
	Ping(ctx context.Context) error
}

// BulkItem is one result of a BulkGet. A missing key has Found=false and
// no Data; a per-key failure sets Error.
type BulkItem struct {
	Key         string
	Found       bool
	Data        []byte
	ETag        string
	Error       string
	Metadata    map[string]string
	ContentType string
}

// Query mirrors the Dapr state query (dapr.proto.components.v1.Query).
type Query struct {
	// Filter maps the top-level operator ("EQ", "IN", "AND", "OR") to its
	// JSON operand, exactly as Dapr sends it; an empty map matches all.
	// ParseFilter turns it into a tree.
	Filter   map[string]json.RawMessage
	Sort     []Sorting
	Page     Pagination
	Metadata map[string]string
}

// Sorting orders query results by a dotted JSON key.
type Sorting struct {
	Key   string
	Order string // "ASC" or "DESC"
}

// Pagination limits query results; Token is the opaque token a previous
// QueryResponse returned.
type Pagination struct {
	Limit int64
	Token string
}

// QueryResponse is one page of query results; Token is empty on the last page.
type QueryResponse struct {
	Items    []QueryItem
	Token    string
	Metadata map[string]string
}

// QueryItem is one query result.
type QueryItem struct {
	Key         string
	Data        []byte
	ETag        string
	Error       string
	ContentType string
}

// TTLMetadataKey is the request metadata key carrying a TTL in seconds.
const TTLMetadataKey = "ttlInSeconds"

// ParseTTL reads "ttlInSeconds" from request metadata. ok is false when no
// TTL applies (absent, 0, or -1 meaning "never expire", as Dapr's stores
// treat them); values below -1 or not integers are errors.
func ParseTTL(md map[string]string) (ttl time.Duration, ok bool, err error) {
	v, present := md[TTLMetadataKey]
	if !present || v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("metadata %s=%q: not an integer: %w", TTLMetadataKey, v, err)
	}
	switch {
	case n < -1:
		return 0, false, fmt.Errorf("metadata %s=%d: must be -1 (no expiry) or >= 0", TTLMetadataKey, n)
	case n <= 0:
		return 0, false, nil
	case n > int64(time.Duration(1<<63-1)/time.Second):
		return 0, false, fmt.Errorf("metadata %s=%d: too large", TTLMetadataKey, n)
	}
	return time.Duration(n) * time.Second, true, nil
}
