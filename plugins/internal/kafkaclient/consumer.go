package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler processes one record: nil = done (the offset may be committed),
// an error = not done (the same record is offered again).
type Handler func(ctx context.Context, r *Record) error

// maxRetryFactor caps the retry pause at this multiple of consumeRetryInterval.
const maxRetryFactor = 32

// pollRecords bounds one poll.
const pollRecords = 500

// Consume reads topics as a member of the consumer group until ctx ends,
// then commits what was handled, leaves the group and returns nil. An error
// means the consumer could not start.
func (c *Client) Consume(ctx context.Context, topics []string, h Handler) error {
	if c.cfg.Group == "" {
		return errors.New("consume: no consumer group (set consumerGroup or consumerID)")
	}
	if len(topics) == 0 {
		return errors.New("consume: no topics")
	}
	g := &group{c: c, h: h, ctx: ctx, workers: map[tp]*worker{}}
	start := kgo.NewOffset().AtEnd()
	if c.cfg.InitialOldest {
		start = kgo.NewOffset().AtStart()
	}
	opts := append(c.cfg.baseOpts(c.log),
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(start),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(c.cfg.CommitInterval),
		kgo.HeartbeatInterval(c.cfg.HeartbeatInterval),
		kgo.SessionTimeout(c.cfg.SessionTimeout),
		kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsAssigned(g.assigned),
		kgo.OnPartitionsRevoked(g.revoked),
		kgo.OnPartitionsLost(g.lost),
	)
	if c.cfg.MaxMessageBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(c.cfg.MaxMessageBytes))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	g.cl = cl
	defer g.shutdown()
	for {
		fetches := cl.PollRecords(ctx, pollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("kafka fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				g.dispatch(tp{p.Topic, p.Partition}, p.Records)
			}
		})
	}
}

type tp struct {
	topic     string
	partition int32
}

// group is one Consume call: its client and a worker per owned partition.
type group struct {
	c   *Client
	cl  *kgo.Client
	h   Handler
	ctx context.Context

	mu      sync.Mutex
	workers map[tp]*worker
}

// worker hands one partition's records to the handler in offset order.
type worker struct {
	recs   chan []*kgo.Record
	ctx    context.Context // ends when the partition is revoked or Consume returns
	cancel context.CancelFunc
	done   chan struct{}
}

func (g *group) assigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			key := tp{topic, p}
			if _, ok := g.workers[key]; ok {
				continue
			}
			ctx, cancel := context.WithCancel(g.ctx)
			w := &worker{recs: make(chan []*kgo.Record, 4), ctx: ctx, cancel: cancel, done: make(chan struct{})}
			g.workers[key] = w
			go g.run(w)
		}
	}
}

// revoked stops the revoked partitions' workers and commits what they
// handled, so the next owner starts after it.
func (g *group) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	g.stop(parts)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		g.c.log.Warn("kafka commit on revoke failed; handled records may come again", "err", err)
	}
}

// lost stops the lost partitions' workers; commits would fail.
func (g *group) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) { g.stop(parts) }

func (g *group) stop(parts map[string][]int32) {
	var stopping []*worker
	g.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			if w, ok := g.workers[tp{topic, p}]; ok {
				delete(g.workers, tp{topic, p})
				stopping = append(stopping, w)
			}
		}
	}
	g.mu.Unlock()
	for _, w := range stopping {
		w.cancel()
	}
	for _, w := range stopping {
		<-w.done
	}
}

// dispatch queues records for their partition's worker; it waits while
// the worker is busy (a partition's backlog slows polling) and drops the
// records of a partition no longer owned (its next owner reads them).
func (g *group) dispatch(key tp, recs []*kgo.Record) {
	g.mu.Lock()
	w, ok := g.workers[key]
	g.mu.Unlock()
	if !ok {
		return
	}
	select {
	case w.recs <- recs:
	case <-w.ctx.Done(): // revoked or shutting down
	}
}

func (g *group) run(w *worker) {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			return
		case batch := <-w.recs:
			for _, kr := range batch {
				if !g.handle(w.ctx, kr) {
					// Stopped before the handler acknowledged: not marked,
					// so this partition's next owner reads it again.
					return
				}
				g.cl.MarkCommitRecords(kr)
			}
		}
	}
}

// handle offers one record until the handler acknowledges it; false when
// ctx ended first.
func (g *group) handle(ctx context.Context, kr *kgo.Record) bool {
	r := toRecord(kr)
	pause := g.c.cfg.ConsumeRetryInterval
	for {
		err := g.h(ctx, r)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		g.c.log.Debug("kafka record not acknowledged; retrying", "record", r.ID(), "in", pause, "err", err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		pause = min(2*pause, maxRetryFactor*g.c.cfg.ConsumeRetryInterval)
	}
}

// shutdown stops every worker, commits what was handled and leaves the group.
func (g *group) shutdown() {
	all := map[string][]int32{}
	g.mu.Lock()
	for key := range g.workers {
		all[key.topic] = append(all[key.topic], key.partition)
	}
	g.mu.Unlock()
	g.stop(all)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.cl.CommitMarkedOffsets(ctx); err != nil {
		g.c.log.Warn("kafka commit at shutdown failed; handled records may come again", "err", err)
	}
	g.cl.Close()
}
