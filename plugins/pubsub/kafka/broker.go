package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"

	"github.com/outrigger/outrigger/plugins/internal/kafkaclient"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// Request metadata keys that choose the record key (Dapr reads
// partitionKey, and key as its alias).
var keyMetadata = []string{"partitionKey", "key"}

// Broker is the pubsub.kafka component.
type Broker struct {
	log    *slog.Logger
	client *kafkaclient.Client
}

// New returns an unconfigured broker; the SDK calls Init.
func New(log *slog.Logger) sdk.PubSub { return &Broker{log: log} }

var (
	_ sdk.BulkPublisher = (*Broker)(nil)
	_ sdk.Pinger        = (*Broker)(nil)
	_ sdk.Closer        = (*Broker)(nil)
)

// Init parses the metadata and connects.
func (b *Broker) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := kafkaclient.ParseConfig(md)
	if err != nil {
		return fmt.Errorf("pubsub.kafka: %w", err)
	}
	if cfg.Group == "" {
		return errors.New("pubsub.kafka: metadata consumerGroup or consumerID is required (the host sets consumerID to the app id)")
	}
	c, err := kafkaclient.New(ctx, cfg, b.log)
	if err != nil {
		return fmt.Errorf("pubsub.kafka: %w", err)
	}
	b.client = c
	return nil
}

// Close closes the producer; safe on a broker never initialised.
func (b *Broker) Close() error {
	if b.client == nil {
		return nil
	}
	err := b.client.Close()
	b.client = nil
	return err
}

// Ping checks a broker answers.
func (b *Broker) Ping(ctx context.Context) error { return b.client.Ping(ctx) }

func toMessage(data []byte, contentType string, md map[string]string) kafkaclient.Message {
	m := kafkaclient.Message{Value: data, ContentType: contentType}
	headers := maps.Clone(md)
	for _, k := range keyMetadata {
		if v, ok := headers[k]; ok {
			if m.Key == nil && v != "" {
				m.Key = []byte(v)
			}
			delete(headers, k)
		}
	}
	m.Headers = headers
	return m
}

// Publish produces one record and waits for the brokers' ack.
func (b *Broker) Publish(ctx context.Context, req *sdk.PublishRequest) error {
	if req.Topic == "" {
		return errors.New("pubsub.kafka: topic is empty")
	}
	if err := b.client.Publish(ctx, req.Topic, toMessage(req.Data, req.ContentType, req.Metadata))[0]; err != nil {
		return fmt.Errorf("pubsub.kafka: %w", err)
	}
	return nil
}

// BulkPublish produces all entries in one batch; the failed ones are
// reported one by one. Entry metadata overrides request metadata.
func (b *Broker) BulkPublish(ctx context.Context, topic string, entries []sdk.BulkEntry, md map[string]string) ([]sdk.BulkFailure, error) {
	if topic == "" {
		return nil, errors.New("pubsub.kafka: topic is empty")
	}
	msgs := make([]kafkaclient.Message, len(entries))
	for i, e := range entries {
		emd := maps.Clone(md)
		if emd == nil {
			emd = map[string]string{}
		}
		maps.Copy(emd, e.Metadata)
		msgs[i] = toMessage(e.Data, e.ContentType, emd)
	}
	var failed []sdk.BulkFailure
	for i, err := range b.client.Publish(ctx, topic, msgs...) {
		if err != nil {
			failed = append(failed, sdk.BulkFailure{EntryID: entries[i].EntryID, Error: err.Error()})
		}
	}
	return failed, nil
}

// Subscribe consumes the topic in the consumer group until ctx ends.
func (b *Broker) Subscribe(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
	if req.Topic == "" {
		return errors.New("pubsub.kafka: subscribe: topic is empty")
	}
	err := b.client.Consume(ctx, []string{req.Topic}, func(ctx context.Context, r *kafkaclient.Record) error {
		md := maps.Clone(r.Headers)
		if md == nil {
			md = map[string]string{}
		}
		if len(r.Key) > 0 {
			md["__key"] = string(r.Key)
		}
		md["__partition"] = strconv.Itoa(int(r.Partition))
		md["__offset"] = strconv.FormatInt(r.Offset, 10)
		return h(ctx, &sdk.Message{ID: r.ID(), Topic: r.Topic, Data: r.Value, Metadata: md, ContentType: r.ContentType})
	})
	if err != nil {
		return fmt.Errorf("pubsub.kafka: %w", err)
	}
	return nil
}
