package sdk

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
)

// PubSub is what every pub/sub broker plugin implements (Dapr's pubsub.*
// components). Optional capabilities are one-method interfaces on the same
// value: BulkPublisher, MessageTTLer, Wildcarder, Closer, Pinger.
type PubSub interface {
	// Init configures the broker from its component metadata. It is called
	// once per component instance, before any other call. md includes
	// "consumerID" (ConsumerIDKey): the host injects the app id when the
	// Component YAML does not set it. Instances with the same consumerID
	// share (compete for) a topic's messages; different consumerIDs each get
	// every message.
	Init(ctx context.Context, md Metadata) error
	// Publish appends one message to a topic.
	Publish(ctx context.Context, req *PublishRequest) error
	// Subscribe delivers messages of one topic to h until ctx ends, then
	// returns nil. h may be called concurrently; h returning nil = ack, an
	// error = nack (the broker must redeliver later). A message whose h
	// call never returned (the process died, the stream closed) must also
	// be redelivered: at-least-once. An error returned before ctx ends
	// fails the subscription (the host reconnects).
	Subscribe(ctx context.Context, req SubscribeRequest, h MessageHandler) error
}

// PublishRequest is one message to publish.
type PublishRequest struct {
	Topic       string
	Data        []byte
	Metadata    map[string]string // request metadata (e.g. "ttlInSeconds", "partitionKey")
	ContentType string
}

// SubscribeRequest names the topic to subscribe to, with the subscription's
// metadata (Subscription YAML metadata, passed by the host).
type SubscribeRequest struct {
	Topic    string
	Metadata map[string]string
}

// Message is one delivered message.
type Message struct {
	// ID is the broker's id for the message (used in logs and, when unique
	// among the messages awaiting an ack on a stream, as the wire id).
	ID          string
	Topic       string
	Data        []byte
	Metadata    map[string]string
	ContentType string
}

// MessageHandler processes one message: nil = ack, error = nack.
type MessageHandler func(ctx context.Context, m *Message) error

// BulkPublisher publishes many messages at once (feature "BULK_PUBSUB").
// Without it the SDK loops over Publish. It returns the entries that failed;
// an error means the whole batch failed.
type BulkPublisher interface {
	BulkPublish(ctx context.Context, topic string, entries []BulkEntry, md map[string]string) ([]BulkFailure, error)
}

// BulkEntry is one message of a bulk publish.
type BulkEntry struct {
	EntryID     string
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// BulkFailure names one entry of a bulk publish that failed and why.
type BulkFailure struct {
	EntryID string
	Error   string
}

// MessageTTLer is a marker: the broker honours the publish metadata
// "ttlInSeconds" (read it with ParseTTL) and never delivers an expired
// message (feature "MESSAGE_TTL").
type MessageTTLer interface{ MessageTTL() }

// Wildcarder is a marker: Subscribe accepts the broker's wildcard topic
// patterns (feature "SUBSCRIBE_WILDCARDS").
type Wildcarder interface{ SubscribeWildcards() }

// ConsumerIDKey is the component metadata key naming the consumer group.
const ConsumerIDKey = "consumerID"

// Pub/sub feature names advertised to the host, as Dapr spells them.
const (
	FeatureMessageTTL         = "MESSAGE_TTL"
	FeatureSubscribeWildcards = "SUBSCRIBE_WILDCARDS"
	FeatureBulkPubSub         = "BULK_PUBSUB"
)

// MaxInFlightPerStream bounds how many messages of one subscription stream
// may await their ack at once; further handler calls wait for a free slot,
// so a slow app slows the broker reads instead of filling memory.
const MaxInFlightPerStream = 512

// PubSubFeatures derives the features a broker advertises from the optional
// interfaces it implements, so they cannot lie.
func PubSubFeatures(p PubSub) []string {
	f := []string{}
	if _, ok := p.(MessageTTLer); ok {
		f = append(f, FeatureMessageTTL)
	}
	if _, ok := p.(Wildcarder); ok {
		f = append(f, FeatureSubscribeWildcards)
	}
	if _, ok := p.(BulkPublisher); ok {
		f = append(f, FeatureBulkPubSub)
	}
	return f
}

// WithPubSub serves a pub/sub broker (dapr.proto.components.v1 PubSub);
// newPubSub is called once per component instance (at Init) and once more
// to probe the type's capabilities.
func WithPubSub(newPubSub func() PubSub) Option {
	return addService("pubsub", func(s grpc.ServiceRegistrar, log *slog.Logger) (func() error, error) {
		srv, err := newPubSubServer(newPubSub, log)
		if err != nil {
			return nil, err
		}
		srv.register(s)
		return srv.closeAll, nil
	})
}
