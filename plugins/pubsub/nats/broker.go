package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// contentTypeHeader carries a message's content type.
const contentTypeHeader = "Content-Type"

// Broker is the pubsub.nats component.
type Broker struct {
	log *slog.Logger
	cfg config
	nc  *nats.Conn
	js  jetstream.JetStream
}

// New returns an unconfigured broker; the SDK calls Init.
func New(log *slog.Logger) sdk.PubSub { return &Broker{log: log} }

var (
	_ sdk.Pinger = (*Broker)(nil)
	_ sdk.Closer = (*Broker)(nil)
)

// Init parses the metadata, connects and checks JetStream is enabled.
func (b *Broker) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return fmt.Errorf("pubsub.nats: %w", err)
	}
	b.cfg = cfg
	opts := []nats.Option{nats.Name(cfg.name), nats.Timeout(cfg.connectTimeout), nats.MaxReconnects(-1)}
	if cfg.token != "" {
		opts = append(opts, nats.Token(cfg.token))
	}
	if cfg.jwt != "" {
		opts = append(opts, nats.UserJWTAndSeed(cfg.jwt, cfg.seedKey))
	}
	nc, err := nats.Connect(cfg.url, opts...)
	if err != nil {
		return fmt.Errorf("pubsub.nats: connect to %s: %w", cfg.url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("pubsub.nats: jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return fmt.Errorf("pubsub.nats: JetStream is not available at %s (start nats-server with -js): %w", cfg.url, err)
	}
	b.nc, b.js = nc, js
	return nil
}

// Close closes the connection; safe on a broker never initialised.
func (b *Broker) Close() error {
	if b.nc != nil {
		b.nc.Close()
		b.nc = nil
	}
	return nil
}

// Ping checks JetStream answers.
func (b *Broker) Ping(ctx context.Context) error {
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("pubsub.nats: ping: %w", err)
	}
	return nil
}

// Publish sends one message and waits for the stream's ack. When no stream
// captures the subject and streamName is unset, it creates one and retries.
func (b *Broker) Publish(ctx context.Context, req *sdk.PublishRequest) error {
	if req.Topic == "" {
		return errors.New("pubsub.nats: topic is empty")
	}
	msg := &nats.Msg{Subject: req.Topic, Data: req.Data, Header: nats.Header{}}
	for k, v := range req.Metadata {
		msg.Header.Set(k, v)
	}
	if req.ContentType != "" {
		msg.Header.Set(contentTypeHeader, req.ContentType)
	}
	_, err := b.js.PublishMsg(ctx, msg)
	noStream := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
	if noStream && b.cfg.streamName == "" {
		if _, serr := b.stream(ctx, req.Topic); serr != nil {
			return fmt.Errorf("pubsub.nats: publish to %s: %w", req.Topic, serr)
		}
		_, err = b.js.PublishMsg(ctx, msg)
	}
	if err != nil {
		return fmt.Errorf("pubsub.nats: publish to %s: %w", req.Topic, err)
	}
	return nil
}

// stream returns the stream capturing topic: streamName, else the stream
// bound to the subject, else a new stream named after the topic.
func (b *Broker) stream(ctx context.Context, topic string) (string, error) {
	if b.cfg.streamName != "" {
		return b.cfg.streamName, nil
	}
	name, err := b.js.StreamNameBySubject(ctx, topic)
	if err == nil {
		return name, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", fmt.Errorf("finding the stream of subject %s: %w", topic, err)
	}
	name = sanitize(topic)
	storage := jetstream.FileStorage
	if b.cfg.memoryStorage {
		storage = jetstream.MemoryStorage
	}
	_, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{topic}, Storage: storage, Replicas: b.cfg.replicas})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return "", fmt.Errorf("creating stream %s for subject %s: %w", name, topic, err)
	}
	return name, nil
}

// sanitize makes s a valid stream or consumer name (no . * > / \ or spaces).
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', '/', '\\', ' ', '\t', '\n', '\r':
			return '_'
		}
		return r
	}, s)
}

// Subscribe consumes the topic through the group's durable pull consumer
// until ctx ends.
func (b *Broker) Subscribe(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
	topic := req.Topic
	if topic == "" {
		return errors.New("pubsub.nats: subscribe: topic is empty")
	}
	stream, err := b.stream(ctx, topic)
	if err != nil {
		return fmt.Errorf("pubsub.nats: %w", err)
	}
	ccfg := jetstream.ConsumerConfig{
		Durable:       sanitize(b.cfg.durable + "-" + topic),
		FilterSubject: topic,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.ackWait,
		MaxDeliver:    b.cfg.maxDeliver,
		MaxAckPending: b.cfg.maxAckPending,
		BackOff:       b.cfg.backOff,
		DeliverPolicy: b.cfg.deliverPolicy,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		MemoryStorage: b.cfg.memoryStorage,
		Description:   "outrigger consumer group " + b.cfg.durable,
	}
	if b.cfg.startSequence > 0 {
		ccfg.OptStartSeq = b.cfg.startSequence
	}
	if !b.cfg.startTime.IsZero() {
		t := b.cfg.startTime
		ccfg.OptStartTime = &t
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, stream, ccfg)
	if err != nil {
		return fmt.Errorf("pubsub.nats: durable consumer %s on stream %s: %w", ccfg.Durable, stream, err)
	}
	parallel := min(b.cfg.maxAckPending, sdk.MaxInFlightPerStream)
	if b.cfg.single {
		parallel = 1
	}
	slots := make(chan struct{}, parallel)
	hctx, cancelHandlers := context.WithCancel(ctx)
	defer cancelHandlers()
	var wg sync.WaitGroup
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case slots <- struct{}{}:
		case <-hctx.Done():
			_ = m.Nak() // not handled: give it to another consumer now
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			b.handle(hctx, topic, m, h)
		}()
	}, jetstream.PullMaxMessages(parallel), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		b.log.Debug("jetstream consume", "topic", topic, "err", err)
	}))
	if err != nil {
		return fmt.Errorf("pubsub.nats: consume %s: %w", ccfg.Durable, err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	wg.Wait()
	return nil
}

func (b *Broker) handle(ctx context.Context, topic string, m jetstream.Msg, h sdk.MessageHandler) {
	msg := &sdk.Message{Topic: topic, Data: m.Data()}
	if meta, err := m.Metadata(); err == nil {
		msg.ID = meta.Stream + ":" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	if hdr := m.Headers(); len(hdr) > 0 {
		msg.Metadata = map[string]string{}
		for k := range maps.Keys(hdr) {
			if k == contentTypeHeader {
				msg.ContentType = hdr.Get(k)
				continue
			}
			msg.Metadata[k] = hdr.Get(k)
		}
	}
	err := h(ctx, msg)
	switch {
	case err == nil:
		if aerr := m.Ack(); aerr != nil {
			b.log.Warn("jetstream ack failed; the message will come again after ackWait", "id", msg.ID, "err", aerr)
		}
	case b.cfg.nakDelay > 0 && ctx.Err() == nil:
		_ = m.NakWithDelay(b.cfg.nakDelay)
	default:
		// A nack, or the subscription ended first: redeliver now.
		_ = m.Nak()
	}
}
