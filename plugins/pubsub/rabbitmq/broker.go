package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/outrigger/outrigger/plugins/internal/amqpclient"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// Broker is the pubsub.rabbitmq component.
type Broker struct {
	log    *slog.Logger
	client *amqpclient.Client
}

// New returns an unconfigured broker; the SDK calls Init.
func New(log *slog.Logger) sdk.PubSub { return &Broker{log: log} }

var (
	_ sdk.MessageTTLer = (*Broker)(nil)
	_ sdk.Pinger       = (*Broker)(nil)
	_ sdk.Closer       = (*Broker)(nil)
)

// MessageTTL marks that ttlInSeconds becomes the message expiration:
// RabbitMQ never delivers an expired message.
func (b *Broker) MessageTTL() {}

// Init parses the metadata and connects.
func (b *Broker) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := amqpclient.ParseConfig(md)
	if err != nil {
		return fmt.Errorf("pubsub.rabbitmq: %w", err)
	}
	if cfg.ConsumerID == "" {
		return errors.New("pubsub.rabbitmq: metadata consumerID is required (the host sets it to the app id)")
	}
	c, err := amqpclient.New(ctx, cfg, b.log)
	if err != nil {
		return fmt.Errorf("pubsub.rabbitmq: %w", err)
	}
	b.client = c
	return nil
}

// Close closes the connection; safe on a broker never initialised.
func (b *Broker) Close() error {
	if b.client == nil {
		return nil
	}
	err := b.client.Close()
	b.client = nil
	return err
}

// Ping checks the connection.
func (b *Broker) Ping(ctx context.Context) error { return b.client.Ping(ctx) }

// Publish sends one message to the topic's exchange and waits for the
// confirm. Request metadata routingKey sets the routing key; ttlInSeconds
// the expiration; the rest travel as headers.
func (b *Broker) Publish(ctx context.Context, req *sdk.PublishRequest) error {
	if req.Topic == "" {
		return errors.New("pubsub.rabbitmq: topic is empty")
	}
	ttl, _, err := sdk.ParseTTL(req.Metadata)
	if err != nil {
		return fmt.Errorf("pubsub.rabbitmq: %w", err)
	}
	headers := maps.Clone(req.Metadata)
	routingKey := headers["routingKey"]
	delete(headers, "routingKey")
	delete(headers, sdk.TTLMetadataKey)
	msg := amqpclient.Message{Body: req.Data, ContentType: req.ContentType, Headers: headers, TTL: ttl}
	if err := b.client.Publish(ctx, req.Topic, routingKey, msg); err != nil {
		return fmt.Errorf("pubsub.rabbitmq: %w", err)
	}
	return nil
}

// Subscribe consumes the queue "<consumerID>-<topic>" (subscription
// metadata queueName overrides it, routingKey sets the binding key) until
// ctx ends.
func (b *Broker) Subscribe(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
	if req.Topic == "" {
		return errors.New("pubsub.rabbitmq: subscribe: topic is empty")
	}
	spec := amqpclient.QueueSpec{
		Exchange:   req.Topic,
		Queue:      b.client.Config().ConsumerID + "-" + req.Topic,
		RoutingKey: req.Metadata["routingKey"],
	}
	if q := req.Metadata["queueName"]; q != "" {
		spec.Queue = q
	}
	err := b.client.Consume(ctx, spec, func(ctx context.Context, d *amqpclient.Delivery) error {
		return h(ctx, &sdk.Message{ID: d.ID, Topic: req.Topic, Data: d.Body, Metadata: d.Headers, ContentType: d.ContentType})
	})
	if err != nil {
		return fmt.Errorf("pubsub.rabbitmq: %w", err)
	}
	return nil
}
