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

var errNotInitialised = errors.New("bindings.rabbitmq: not initialised")

// connect parses the metadata, dials and declares the queue (declare is
// false for the output side of an exclusive queue, which belongs to the
// input side's connection).
func connect(ctx context.Context, md sdk.Metadata, log *slog.Logger, declare func(config) bool) (config, *amqpclient.Client, error) {
	cfg, err := parse(md)
	if err != nil {
		return cfg, nil, fmt.Errorf("bindings.rabbitmq: %w", err)
	}
	c, err := amqpclient.New(ctx, cfg.client, log)
	if err != nil {
		return cfg, nil, fmt.Errorf("bindings.rabbitmq: %w", err)
	}
	if declare(cfg) {
		if err := c.DeclareQueue(ctx, cfg.queue); err != nil {
			_ = c.Close()
			return cfg, nil, fmt.Errorf("bindings.rabbitmq: %w (an existing queue keeps its flags and arguments: "+
				"match durable, deleteWhenUnused, exclusive, ttlInSeconds and maxPriority to it, or delete it)", err)
		}
	}
	return cfg, c, nil
}

// Output is the output side of bindings.rabbitmq: create publishes to the queue.
type Output struct {
	log    *slog.Logger
	cfg    config
	client *amqpclient.Client
}

// NewOutput returns an uninitialised output binding.
func NewOutput(log *slog.Logger) *Output { return &Output{log: log} }

var (
	_ sdk.Pinger = (*Output)(nil)
	_ sdk.Closer = (*Output)(nil)
	_ sdk.Pinger = (*Input)(nil)
	_ sdk.Closer = (*Input)(nil)
)

// Init connects and declares the queue, so messages published before any
// reader started are kept. An exclusive queue is left to the input side.
func (o *Output) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, c, err := connect(ctx, md, o.log, func(c config) bool { return !c.queue.Exclusive })
	if err != nil {
		return err
	}
	o.cfg, o.client = cfg, c
	return nil
}

// Operations: create publishes the data.
func (o *Output) Operations() []string { return []string{sdk.OperationCreate} }

// Invoke publishes req.Data to the queue (default exchange, routing key =
// queue name) and waits for the broker's confirm. Request metadata
// ttlInSeconds sets the message's expiration, contentType its content type;
// the other entries travel as message headers.
func (o *Output) Invoke(ctx context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	if o.client == nil {
		return nil, errNotInitialised
	}
	ttl, _, err := sdk.ParseTTL(req.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, sdk.ErrBadRequest)
	}
	if _, ok := req.Metadata["priority"]; ok {
		return nil, fmt.Errorf("metadata priority is not supported by this binding: %w", sdk.ErrBadRequest)
	}
	headers := maps.Clone(req.Metadata)
	delete(headers, sdk.TTLMetadataKey)
	msg := amqpclient.Message{Body: req.Data, ContentType: o.cfg.contentType, TTL: ttl}
	if ct, ok := headers["contentType"]; ok {
		msg.ContentType = ct
		delete(headers, "contentType")
	}
	msg.Headers = headers
	if err := o.client.Publish(ctx, "", o.cfg.queue.Name, msg); err != nil {
		return nil, fmt.Errorf("bindings.rabbitmq: queue %q: %w", o.cfg.queue.Name, err)
	}
	return nil, nil
}

// Ping checks the connection.
func (o *Output) Ping(ctx context.Context) error {
	if o.client == nil {
		return errNotInitialised
	}
	return o.client.Ping(ctx)
}

// Close closes the connection; safe on a binding never initialised.
func (o *Output) Close() error {
	if o.client == nil {
		return nil
	}
	return o.client.Close()
}

// Input is the input side of bindings.rabbitmq: it consumes the queue.
type Input struct {
	log    *slog.Logger
	cfg    config
	client *amqpclient.Client
}

// NewInput returns an uninitialised input binding.
func NewInput(log *slog.Logger) *Input { return &Input{log: log} }

// Init connects and declares the queue (an exclusive one then belongs to
// this binding's connection).
func (in *Input) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, c, err := connect(ctx, md, in.log, func(config) bool { return true })
	if err != nil {
		return err
	}
	in.cfg, in.client = cfg, c
	return nil
}

// Read consumes the queue until ctx ends. Each delivery goes to h (one at a
// time unless concurrencyMode is parallel): nil acks it, an error nacks it
// (requeued unless requeueInFailure is false); a delivery still unacked
// when Read returns is requeued by the broker. A lost connection ends Read
// with an error; the next Read re-dials.
func (in *Input) Read(ctx context.Context, h sdk.BindingHandler) error {
	if in.client == nil {
		return errNotInitialised
	}
	err := in.client.ConsumeQueue(ctx, in.cfg.queue, func(ctx context.Context, d *amqpclient.Delivery) error {
		md := maps.Clone(d.Headers)
		if md == nil {
			md = map[string]string{}
		}
		if d.MessageID != "" {
			md["messageId"] = d.MessageID
		}
		_, err := h(ctx, &sdk.BindingEvent{Data: d.Body, Metadata: md, ContentType: d.ContentType})
		return err
	})
	if err != nil {
		return fmt.Errorf("bindings.rabbitmq: %w", err)
	}
	return nil
}

// Ping checks the connection.
func (in *Input) Ping(ctx context.Context) error {
	if in.client == nil {
		return errNotInitialised
	}
	return in.client.Ping(ctx)
}

// Close closes the connection (an exclusive queue goes with it); safe on a
// binding never initialised.
func (in *Input) Close() error {
	if in.client == nil {
		return nil
	}
	return in.client.Close()
}
