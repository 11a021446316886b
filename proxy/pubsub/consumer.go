package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrigger/outrigger/proxy/telemetry"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"

	"github.com/outrigger/outrigger/proxy/pubsub/cloudevent"
)

// metadataKeyPubsub is added to every message's metadata (Dapr does the same).
const metadataKeyPubsub = "pubsubName"

// Reconnect backoff for a broken PullMessages stream.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// consumer reads one subscription's PullMessages stream and hands each
// message to its deliverer, acking or nacking on the same stream.
type consumer struct {
	a      *API
	sub    *subscription
	broker Broker
	d      deliverer
	log    *slog.Logger

	// base ends every stream (cancelled last, after draining).
	base       context.Context
	baseCancel context.CancelFunc
	// work is the context of deliveries; cancelled when a drain times out.
	work       context.Context
	workCancel context.CancelFunc

	// cur is the open stream, so stop can half-close it.
	cur      atomic.Pointer[pull]
	stopping atomic.Bool
	stopOnce sync.Once
	inflight sync.WaitGroup
	sem      chan struct{}
	done     chan struct{}
}

func (a *API) newConsumer(sub *subscription, b Broker, d deliverer) *consumer {
	c := &consumer{a: a, sub: sub, broker: b, d: d, sem: make(chan struct{}, a.maxConc), done: make(chan struct{}),
		log: a.log.With("pubsub", sub.pubsub, "topic", sub.topic)}
	c.base, c.baseCancel = context.WithCancel(context.Background())
	c.work, c.workCancel = context.WithCancel(context.Background())
	return c
}

// pull is one open PullMessages stream.
type pull struct {
	stream componentsv1.PubSub_PullMessagesClient
	mu     sync.Mutex // serialises Send
}

func (p *pull) ack(id string, err error) error {
	req := &componentsv1.PullMessagesRequest{AckMessageId: id}
	if err != nil {
		req.AckError = &componentsv1.AckMessageError{Message: err.Error()}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stream.Send(req)
}

// open starts a PullMessages stream and names the topic.
func (c *consumer) open() (*pull, error) {
	stream, err := componentsv1.NewPubSubClient(c.broker.Conn).PullMessages(c.base)
	if err != nil {
		return nil, fmt.Errorf("open PullMessages on pubsub %s: %w", c.broker.Name, err)
	}
	if err := stream.Send(&componentsv1.PullMessagesRequest{Topic: &componentsv1.Topic{Name: c.sub.topic, Metadata: c.sub.metadata}}); err != nil {
		return nil, fmt.Errorf("subscribe to topic %s on pubsub %s: %w", c.sub.topic, c.broker.Name, err)
	}
	p := &pull{stream: stream}
	c.cur.Store(p)
	return p, nil
}

// start opens the first stream synchronously (so a broker that only keeps
// messages for live subscribers sees the subscription before start returns),
// calls ready, and then consumes in the background until stop.
func (c *consumer) start(ready func()) {
	p, err := c.open()
	if err != nil {
		c.log.Warn("subscription not open yet, retrying", "err", err)
		p = nil
	}
	if ready != nil {
		ready()
	}
	go c.run(p)
}

func (c *consumer) run(p *pull) {
	defer close(c.done)
	backoff := reconnectMin
	for {
		if p != nil {
			err := c.receive(p)
			if c.stopping.Load() || c.base.Err() != nil {
				return
			}
			c.log.Warn("subscription stream ended, reopening", "err", err)
			backoff = reconnectMin
		}
		select {
		case <-c.base.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, reconnectMax)
		var err error
		if p, err = c.open(); err != nil {
			c.log.Warn("subscription stream not open, retrying", "err", err, "in", backoff)
			p = nil
		}
	}
}

// receive handles the messages of one stream until it ends.
func (c *consumer) receive(p *pull) error {
	var batch *batcher
	if c.sub.bulk.enabled {
		batch = newBatcher(c, p)
		defer batch.close()
	}
	for {
		m, err := p.stream.Recv()
		if err != nil {
			return err
		}
		if c.stopping.Load() {
			continue // not delivered, not acked: the broker redelivers it later
		}
		if batch != nil {
			batch.add(m)
			continue
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.base.Done():
			return c.base.Err()
		}
		c.inflight.Add(1)
		go func() {
			defer func() { <-c.sem; c.inflight.Done() }()
			err := c.handle(c.work, m)
			if aerr := p.ack(m.GetId(), err); aerr != nil {
				c.log.Debug("ack not sent; the broker will redeliver", "id", m.GetId(), "err", aerr)
			}
		}()
	}
}

// stop drains in-flight deliveries (until ctx ends), then half-closes the
// stream and waits (until ctx ends) for the plugin to end it, so the last
// acks reach the broker before the stream goes: cancelling at once would let
// the plugin drop acks still in flight, and the broker would deliver those
// messages again. Messages not yet acked are redelivered by the broker.
// It is safe to call more than once; later calls wait for the first.
func (c *consumer) stop(ctx context.Context) {
	c.stopOnce.Do(func() {
		c.stopping.Store(true)
		drained := make(chan struct{})
		go func() { c.inflight.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-ctx.Done():
			c.workCancel()
			<-drained
		}
		if p := c.cur.Load(); p != nil {
			p.mu.Lock()
			_ = p.stream.CloseSend()
			p.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
			}
		}
		c.baseCancel()
		c.workCancel()
	})
	<-c.done
}

// messageMetadata is the broker metadata plus pubsubName.
func (c *consumer) messageMetadata(m *componentsv1.PullMessagesResponse) map[string]string {
	md := make(map[string]string, len(m.GetMetadata())+1)
	for k, v := range m.GetMetadata() {
		md[k] = v
	}
	md[metadataKeyPubsub] = c.sub.pubsub
	return md
}

// event parses the message into its CloudEvent (wrapping raw payloads) and
// returns the JSON delivered to HTTP apps.
func (c *consumer) event(m *componentsv1.PullMessagesResponse) (map[string]any, []byte, error) {
	topic := c.topicOf(m)
	if c.sub.raw {
		ce := cloudevent.FromRaw(m.GetData(), topic, c.sub.pubsub)
		b, err := json.Marshal(ce)
		return ce, b, err
	}
	var ce map[string]any
	if err := json.Unmarshal(m.GetData(), &ce); err != nil || ce == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		return nil, nil, fmt.Errorf("message %s is not a CloudEvent: %w", m.GetId(), err)
	}
	return ce, m.GetData(), nil
}

func (c *consumer) topicOf(m *componentsv1.PullMessagesResponse) string {
	if t := m.GetTopicName(); t != "" {
		return t
	}
	return c.sub.topic
}

// handle delivers one message; nil = ack, an error = nack.
func (c *consumer) handle(ctx context.Context, m *componentsv1.PullMessagesResponse) error {
	ce, data, err := c.event(m)
	if err != nil {
		c.log.Error("cannot deliver message", "err", err)
		return c.deadLetterOr(ctx, m, err)
	}
	if cloudevent.Expired(ce, time.Now()) {
		c.log.Warn("dropping expired event", "id", ce[cloudevent.FieldID], "expiration", ce[cloudevent.FieldExpiration])
		c.deadLetter(ctx, m)
		return nil
	}
	path, ok, err := c.sub.route(ce)
	if err != nil {
		c.log.Error("routing failed", "id", ce[cloudevent.FieldID], "err", err)
		return c.deadLetterOr(ctx, m, err)
	}
	if !ok {
		c.log.Debug("no route matches the event; dropped", "id", ce[cloudevent.FieldID])
		c.deadLetter(ctx, m)
		return nil
	}
	d := &delivery{ce: ce, data: data, pubsub: c.sub.pubsub, topic: c.topicOf(m), path: path, metadata: c.messageMetadata(m)}
	if t := c.a.tracing; t.Enabled() {
		// The delivery span: a child of the publisher's, parent of the app's.
		tp := cloudevent.String(ce, cloudevent.FieldTraceParent)
		if tp == "" {
			tp = cloudevent.String(ce, cloudevent.FieldTraceID)
		}
		sctx := telemetry.ContextWithTraceparent(ctx, tp, cloudevent.String(ce, cloudevent.FieldTraceState))
		sctx, span := t.Start(sctx, "pubsub/"+d.topic, oteltrace.SpanKindConsumer,
			attribute.String("messaging.system", "dapr"), attribute.String("messaging.destination.name", d.topic),
			attribute.String("messaging.dapr.pubsub", d.pubsub))
		defer span.End()
		d.traceparent, d.tracestate = telemetry.Traceparent(sctx), telemetry.Tracestate(sctx)
	}
	err = c.a.retrier.Retry(ctx, c.sub.pubsub, func(ctx context.Context) error {
		o, err := c.d.deliver(ctx, d)
		if err != nil {
			c.log.Warn("delivery failed; retriable", "id", ce[cloudevent.FieldID], "err", err)
			return err
		}
		switch o {
		case outDrop:
			c.log.Warn("app dropped the event", "id", ce[cloudevent.FieldID])
			c.deadLetter(ctx, m)
		case outIgnore:
			c.log.Error("app does not handle the event's route; dropped", "id", ce[cloudevent.FieldID], "path", path)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return c.deadLetterOr(ctx, m, err)
	}
	return err
}

// deadLetter publishes the original message to the subscription's
// dead-letter topic, if it has one; failures are logged.
func (c *consumer) deadLetter(ctx context.Context, m *componentsv1.PullMessagesResponse) {
	if c.sub.deadLetter == "" {
		return
	}
	if err := c.sendDeadLetter(ctx, m); err != nil {
		c.log.Error("dead-letter publish failed", "deadLetterTopic", c.sub.deadLetter, "err", err)
	}
}

// deadLetterOr sends m to the dead-letter topic and acks; without one (or
// when that publish fails) it returns err so the message is nacked.
func (c *consumer) deadLetterOr(ctx context.Context, m *componentsv1.PullMessagesResponse, err error) error {
	if c.sub.deadLetter == "" {
		return err
	}
	if derr := c.sendDeadLetter(ctx, m); derr != nil {
		c.log.Error("dead-letter publish failed; message returned to the broker", "deadLetterTopic", c.sub.deadLetter, "err", derr)
		return err
	}
	return nil
}

func (c *consumer) sendDeadLetter(ctx context.Context, m *componentsv1.PullMessagesResponse) error {
	return c.a.send(ctx, c.broker, c.sub.deadLetter, prepared{data: m.GetData(), contentType: m.GetContentType(), metadata: c.messageMetadata(m)})
}
