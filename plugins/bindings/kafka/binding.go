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

var errNotInitialised = errors.New("bindings.kafka: not initialised")

// keyMetadata are the request metadata keys that choose the record key
// (Dapr reads partitionKey, and key as its alias).
var keyMetadata = []string{"partitionKey", "key"}

// Event metadata keys, Dapr's names.
const (
	keyKey       = "__key"
	topicKey     = "__topic"
	partitionKey = "__partition"
	offsetKey    = "__offset"
	timestampKey = "__timestamp"
)

// connect parses the metadata and checks the cluster answers.
func connect(ctx context.Context, md sdk.Metadata, log *slog.Logger) (config, *kafkaclient.Client, error) {
	cfg, err := parse(md)
	if err != nil {
		return cfg, nil, fmt.Errorf("bindings.kafka: %w", err)
	}
	c, err := kafkaclient.New(ctx, cfg.client, log)
	if err != nil {
		return cfg, nil, fmt.Errorf("bindings.kafka: %w", err)
	}
	return cfg, c, nil
}

var (
	_ sdk.Pinger = (*Output)(nil)
	_ sdk.Closer = (*Output)(nil)
	_ sdk.Pinger = (*Input)(nil)
	_ sdk.Closer = (*Input)(nil)
)

// Output is the output side of bindings.kafka: create produces to publishTopic.
type Output struct {
	log    *slog.Logger
	cfg    config
	client *kafkaclient.Client
}

// NewOutput returns an uninitialised output binding.
func NewOutput(log *slog.Logger) *Output { return &Output{log: log} }

// Init parses the metadata and connects. A component without publishTopic
// initialises (it may be used for input only); create then fails.
func (o *Output) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, c, err := connect(ctx, md, o.log)
	if err != nil {
		return err
	}
	o.cfg, o.client = cfg, c
	return nil
}

// Operations: create produces the data.
func (o *Output) Operations() []string { return []string{sdk.OperationCreate} }

// Invoke produces req.Data to publishTopic and waits for the brokers' ack.
// Request metadata partitionKey (alias key) is the record key; the other
// entries travel as record headers.
func (o *Output) Invoke(ctx context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	if o.client == nil {
		return nil, errNotInitialised
	}
	if o.cfg.publishTopic == "" {
		return nil, errors.New("bindings.kafka: metadata publishTopic is not set, so this binding has no output topic")
	}
	m := kafkaclient.Message{Value: req.Data}
	headers := maps.Clone(req.Metadata)
	for _, k := range keyMetadata {
		if v, ok := headers[k]; ok {
			if m.Key == nil && v != "" {
				m.Key = []byte(v)
			}
			delete(headers, k)
		}
	}
	m.Headers = headers
	if err := o.client.Publish(ctx, o.cfg.publishTopic, m)[0]; err != nil {
		return nil, fmt.Errorf("bindings.kafka: %w", err)
	}
	return nil, nil
}

// Ping checks a broker answers.
func (o *Output) Ping(ctx context.Context) error {
	if o.client == nil {
		return errNotInitialised
	}
	return o.client.Ping(ctx)
}

// Close closes the producer; safe on a binding never initialised.
func (o *Output) Close() error {
	if o.client == nil {
		return nil
	}
	return o.client.Close()
}

// Input is the input side of bindings.kafka: it consumes topics in a
// consumer group.
type Input struct {
	log    *slog.Logger
	cfg    config
	client *kafkaclient.Client
}

// NewInput returns an uninitialised input binding.
func NewInput(log *slog.Logger) *Input { return &Input{log: log} }

// Init parses the metadata and connects. A component without topics or
// consumerGroup initialises (it may be used for output only); Read then
// fails.
func (in *Input) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, c, err := connect(ctx, md, in.log)
	if err != nil {
		return err
	}
	in.cfg, in.client = cfg, c
	return nil
}

// Read joins consumerGroup for the topics until ctx ends and hands each
// partition's records to h in offset order: nil marks the offset for
// commit, an error offers the same record again after a growing pause
// (consumeRetryInterval, doubling). A record never acknowledged is read
// again by the group's next Read.
func (in *Input) Read(ctx context.Context, h sdk.BindingHandler) error {
	if in.client == nil {
		return errNotInitialised
	}
	if len(in.cfg.topics) == 0 {
		return errors.New("bindings.kafka: metadata topics is empty, so there is nothing to read (or set direction: output)")
	}
	if in.cfg.client.Group == "" {
		return errors.New("bindings.kafka: metadata consumerGroup is required to read topics")
	}
	err := in.client.Consume(ctx, in.cfg.topics, func(ctx context.Context, r *kafkaclient.Record) error {
		_, err := h(ctx, &sdk.BindingEvent{Data: r.Value, Metadata: eventMetadata(r), ContentType: r.ContentType})
		return err
	})
	if err != nil {
		return fmt.Errorf("bindings.kafka: %w", err)
	}
	return nil
}

// eventMetadata is the record's headers plus Dapr's __key, __topic,
// __partition, __offset and __timestamp (Unix milliseconds).
func eventMetadata(r *kafkaclient.Record) map[string]string {
	md := make(map[string]string, len(r.Headers)+5)
	maps.Copy(md, r.Headers)
	if r.Key != nil {
		md[keyKey] = string(r.Key)
	}
	md[topicKey] = r.Topic
	md[partitionKey] = strconv.Itoa(int(r.Partition))
	md[offsetKey] = strconv.FormatInt(r.Offset, 10)
	md[timestampKey] = strconv.FormatInt(r.Timestamp.UnixMilli(), 10)
	return md
}

// Ping checks a broker answers.
func (in *Input) Ping(ctx context.Context) error {
	if in.client == nil {
		return errNotInitialised
	}
	return in.client.Ping(ctx)
}

// Close closes the client; safe on a binding never initialised.
func (in *Input) Close() error {
	if in.client == nil {
		return nil
	}
	return in.client.Close()
}
