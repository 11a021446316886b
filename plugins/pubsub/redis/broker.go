package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Stream entry fields. "data" is what Dapr's pubsub.redis writes, so
// streams are readable by either.
const (
	fieldData        = "data"
	fieldContentType = "contentType"
	fieldMetadata    = "metadata"
)

const (
	// readBlock is how long one XREADGROUP waits for new entries; it also
	// bounds how long a cancelled subscription takes to notice.
	readBlock = 500 * time.Millisecond
	// ackBatch bounds the ids of one XACK.
	ackBatch = 256
	// retryDelay is the pause after a failed read.
	retryDelay = 200 * time.Millisecond
)

// Broker is the pubsub.redis component: Redis Streams with consumer groups.
type Broker struct {
	cfg    config
	client redis.UniversalClient
	// consumer is this instance's consumer name inside the group: the
	// consumerID plus host, pid and a random suffix, so pending entries
	// belong to one live process and can be reclaimed from a dead one.
	consumer string

	mu     sync.Mutex
	active map[string]int // topic → running subscriptions
	closed bool
}

// New returns an unconfigured broker; the SDK calls Init.
func New() sdk.PubSub { return &Broker{active: map[string]int{}} }

var (
	_ sdk.BulkPublisher = (*Broker)(nil)
	_ sdk.Pinger        = (*Broker)(nil)
	_ sdk.Closer        = (*Broker)(nil)
)

// Init parses the metadata, connects and checks the server answers.
func (b *Broker) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return fmt.Errorf("pubsub.redis: %w", err)
	}
	b.cfg = cfg
	b.client = redis.NewUniversalClient(cfg.UniversalOptions())
	if err := b.client.Ping(ctx).Err(); err != nil {
		_ = b.client.Close()
		b.client = nil
		return fmt.Errorf("pubsub.redis: connect to %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	b.consumer = fmt.Sprintf("%s-%s-%d-%s", cfg.consumerID, host, os.Getpid(), hex.EncodeToString(suffix))
	return nil
}

// Close closes the connection pool; safe on a broker never initialised and
// when called twice. Subscriptions still winding down get errors from the
// closed client (and leave their entries pending), never a nil client.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client == nil || b.closed {
		return nil
	}
	b.closed = true
	return b.client.Close()
}

// Ping checks the server answers.
func (b *Broker) Ping(ctx context.Context) error { return b.client.Ping(ctx).Err() }

func (b *Broker) xaddArgs(topic string, data []byte, contentType string, md map[string]string) (*redis.XAddArgs, error) {
	values := []any{fieldData, data}
	if contentType != "" {
		values = append(values, fieldContentType, contentType)
	}
	if len(md) > 0 {
		j, err := json.Marshal(md)
		if err != nil {
			return nil, fmt.Errorf("encoding metadata: %w", err)
		}
		values = append(values, fieldMetadata, j)
	}
	a := &redis.XAddArgs{Stream: topic, Values: values}
	if b.cfg.maxLenApprox > 0 {
		a.MaxLen, a.Approx = b.cfg.maxLenApprox, true
	}
	return a, nil
}

// Publish appends one entry to the topic's stream (XADD).
func (b *Broker) Publish(ctx context.Context, req *sdk.PublishRequest) error {
	if req.Topic == "" {
		return errors.New("pubsub.redis: topic is empty")
	}
	a, err := b.xaddArgs(req.Topic, req.Data, req.ContentType, req.Metadata)
	if err != nil {
		return err
	}
	if err := b.client.XAdd(ctx, a).Err(); err != nil {
		return fmt.Errorf("pubsub.redis: XADD %s: %w", req.Topic, err)
	}
	return nil
}

// BulkPublish sends every entry in one pipeline; entries that fail are
// reported one by one.
func (b *Broker) BulkPublish(ctx context.Context, topic string, entries []sdk.BulkEntry, md map[string]string) ([]sdk.BulkFailure, error) {
	if topic == "" {
		return nil, errors.New("pubsub.redis: topic is empty")
	}
	pipe := b.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(entries))
	var failed []sdk.BulkFailure
	for i, e := range entries {
		emd := e.Metadata
		if len(emd) == 0 {
			emd = md
		}
		a, err := b.xaddArgs(topic, e.Data, e.ContentType, emd)
		if err != nil {
			failed = append(failed, sdk.BulkFailure{EntryID: e.EntryID, Error: err.Error()})
			continue
		}
		cmds[i] = pipe.XAdd(ctx, a)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		// Exec returns the first failure; the per-command errors below say which.
		if len(failed) == 0 && allFailed(cmds) {
			return nil, fmt.Errorf("pubsub.redis: bulk XADD %s: %w", topic, err)
		}
	}
	for i, c := range cmds {
		if c != nil && c.Err() != nil {
			failed = append(failed, sdk.BulkFailure{EntryID: entries[i].EntryID, Error: c.Err().Error()})
		}
	}
	return failed, nil
}

func allFailed(cmds []*redis.StringCmd) bool {
	for _, c := range cmds {
		if c != nil && c.Err() == nil {
			return false
		}
	}
	return true
}

// Subscribe reads the topic's stream as a member of consumer group
// consumerID until ctx ends. It first replays this consumer's own pending
// entries (left unacked by an earlier subscription), then reads new ones;
// acks are XACKs, a nack leaves the entry pending, and every
// redeliverInterval entries pending longer than processingTimeout (in any
// consumer of the group, dead ones included) are claimed (XAUTOCLAIM) and
// delivered again.
func (b *Broker) Subscribe(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
	topic := req.Topic
	if topic == "" {
		return errors.New("pubsub.redis: subscribe: topic is empty")
	}
	err := b.client.XGroupCreateMkStream(ctx, topic, b.cfg.consumerID, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("pubsub.redis: creating consumer group %q on %q: %w", b.cfg.consumerID, topic, err)
	}
	consumer := b.enter(topic)
	defer b.leave(topic)

	s := &subscription{b: b, topic: topic, consumer: consumer, h: h,
		work: make(chan redis.XMessage, b.cfg.queueDepth), acks: make(chan string, ackBatch)}
	var workers, helpers sync.WaitGroup
	for range b.cfg.concurrency {
		workers.Add(1)
		go func() { defer workers.Done(); s.process(ctx) }()
	}
	helpers.Add(1)
	go func() { defer helpers.Done(); s.acker() }()
	if b.cfg.reclaims() {
		helpers.Add(1)
		go func() { defer helpers.Done(); s.reclaimLoop(ctx) }()
	}
	s.readLoop(ctx)
	close(s.work)
	workers.Wait()
	close(s.acks)
	helpers.Wait()
	return nil
}

// enter returns the consumer name for a new subscription on topic: the
// instance's own name for the first (so it sees the entries an earlier
// subscription left pending), a suffixed one for concurrent extras.
func (b *Broker) enter(topic string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.active[topic]
	b.active[topic] = n + 1
	if n == 0 {
		return b.consumer
	}
	return b.consumer + "-" + strconv.Itoa(n)
}

func (b *Broker) leave(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active[topic]--; b.active[topic] <= 0 {
		delete(b.active, topic)
	}
}

// subscription is one running Subscribe.
type subscription struct {
	b        *Broker
	topic    string
	consumer string
	h        sdk.MessageHandler
	work     chan redis.XMessage
	acks     chan string
}

// readLoop reads entries into work until ctx ends: pending ones first
// (id "0"), then new ones (">").
func (s *subscription) readLoop(ctx context.Context) {
	start := "0"
	for ctx.Err() == nil {
		streams, err := s.b.client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    s.b.cfg.consumerID,
			Consumer: s.consumer,
			Streams:  []string{s.topic, start},
			Count:    int64(s.b.cfg.queueDepth),
			Block:    readBlock,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing new within readBlock
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream or group was deleted under us: recreate.
				_ = s.b.client.XGroupCreateMkStream(ctx, s.topic, s.b.cfg.consumerID, "0").Err()
			}
			sleep(ctx, retryDelay)
			continue
		}
		n := 0
		for _, st := range streams {
			for _, m := range st.Messages {
				n++
				if start != ">" {
					start = m.ID // page through our pending entries
				}
				if !s.dispatch(ctx, m) {
					return
				}
			}
		}
		if start != ">" && n == 0 {
			start = ">" // pending entries replayed; now new ones
		}
	}
}

func (s *subscription) dispatch(ctx context.Context, m redis.XMessage) bool {
	select {
	case s.work <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// work_ runs the handler for entries until work is closed.
func (s *subscription) process(ctx context.Context) {
	for m := range s.work {
		if ctx.Err() != nil {
			continue // left pending: redelivered to the next subscription
		}
		if m.Values == nil {
			// Claimed but trimmed away (maxLenApprox): nothing to deliver.
			s.acks <- m.ID
			continue
		}
		msg, err := toMessage(s.topic, m)
		if err != nil {
			s.acks <- m.ID // undecodable: delivering it again cannot help
			continue
		}
		if err := s.h(ctx, msg); err == nil {
			s.acks <- m.ID
		}
		// On a nack the entry stays pending and is reclaimed after
		// processingTimeout.
	}
}

// acker sends XACKs in batches until acks is closed.
func (s *subscription) acker() {
	ids := make([]string, 0, ackBatch)
	for id := range s.acks {
		ids = append(ids[:0], id)
	drain:
		for len(ids) < ackBatch {
			select {
			case more, ok := <-s.acks:
				if !ok {
					break drain
				}
				ids = append(ids, more)
			default:
				break drain
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// A failed XACK leaves the entries pending: they come again (at-least-once).
		_ = s.b.client.XAck(ctx, s.topic, s.b.cfg.consumerID, ids...).Err()
		cancel()
	}
}

// reclaimLoop claims entries pending longer than processingTimeout every
// redeliverInterval and delivers them again.
func (s *subscription) reclaimLoop(ctx context.Context) {
	t := time.NewTicker(s.b.cfg.redeliverInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := "0-0"
		for ctx.Err() == nil {
			msgs, next, err := s.b.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream:   s.topic,
				Group:    s.b.cfg.consumerID,
				Consumer: s.consumer,
				MinIdle:  s.b.cfg.processingTimeout,
				Start:    start,
				Count:    int64(s.b.cfg.queueDepth),
			}).Result()
			if err != nil {
				break
			}
			for _, m := range msgs {
				if !s.dispatch(ctx, m) {
					return
				}
			}
			if next == "0-0" || next == "" {
				break
			}
			start = next
		}
	}
}

func toMessage(topic string, m redis.XMessage) (*sdk.Message, error) {
	msg := &sdk.Message{ID: m.ID, Topic: topic}
	if v, ok := m.Values[fieldData].(string); ok {
		msg.Data = []byte(v)
	}
	if v, ok := m.Values[fieldContentType].(string); ok {
		msg.ContentType = v
	}
	if v, ok := m.Values[fieldMetadata].(string); ok && v != "" {
		if err := json.Unmarshal([]byte(v), &msg.Metadata); err != nil {
			return nil, fmt.Errorf("entry %s: decoding metadata: %w", m.ID, err)
		}
	}
	return msg, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
