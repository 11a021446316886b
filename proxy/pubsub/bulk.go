package pubsub

import (
	"context"
	"fmt"
	"sync"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"

	"github.com/outrigger/outrigger/proxy/pubsub/cloudevent"
)

// bulkItem is one message of a bulk delivery.
type bulkItem struct {
	id   string
	msg  *componentsv1.PullMessagesResponse
	ce   map[string]any
	data []byte
	path string
	err  error // set when the entry is finally nacked
	done bool
}

// batcher collects messages of a bulk subscription until maxCount or
// maxAwait, then delivers them as one batch per route.
type batcher struct {
	c     *consumer
	p     *pull
	mu    sync.Mutex
	items []*componentsv1.PullMessagesResponse
	timer *time.Timer
}

func newBatcher(c *consumer, p *pull) *batcher { return &batcher{c: c, p: p} }

func (b *batcher) add(m *componentsv1.PullMessagesResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.items = append(b.items, m)
	if len(b.items) >= b.c.sub.bulk.maxCount {
		b.flushLocked()
		return
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.c.sub.bulk.maxAwait, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.flushLocked()
		})
	}
}

// close flushes what is pending (its acks may not reach a closed stream; the
// broker then redelivers).
func (b *batcher) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *batcher) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.items) == 0 || b.c.stopping.Load() {
		b.items = nil
		return
	}
	items := b.items
	b.items = nil
	c := b.c
	c.inflight.Add(1)
	go func() {
		defer c.inflight.Done()
		for id, err := range c.handleBulk(c.work, items) {
			if aerr := b.p.ack(id, err); aerr != nil {
				c.log.Debug("ack not sent; the broker will redeliver", "id", id, "err", aerr)
			}
		}
	}()
}

// handleBulk delivers a batch and returns the ack (nil) or nack of every
// message id.
func (c *consumer) handleBulk(ctx context.Context, msgs []*componentsv1.PullMessagesResponse) map[string]error {
	result := make(map[string]error, len(msgs))
	byPath := map[string][]*bulkItem{}
	var paths []string
	for _, m := range msgs {
		ce, data, err := c.event(m)
		if err != nil {
			result[m.GetId()] = c.deadLetterOr(ctx, m, err)
			continue
		}
		if cloudevent.Expired(ce, time.Now()) {
			c.deadLetter(ctx, m)
			result[m.GetId()] = nil
			continue
		}
		path, ok, err := c.sub.route(ce)
		if err != nil || !ok {
			if err != nil {
				result[m.GetId()] = c.deadLetterOr(ctx, m, err)
			} else {
				c.deadLetter(ctx, m)
				result[m.GetId()] = nil
			}
			continue
		}
		if _, seen := byPath[path]; !seen {
			paths = append(paths, path)
		}
		byPath[path] = append(byPath[path], &bulkItem{id: m.GetId(), msg: m, ce: ce, data: data, path: path})
	}
	for _, path := range paths {
		items := byPath[path]
		err := c.a.retrier.Retry(ctx, c.sub.pubsub, func(ctx context.Context) error {
			var pending []*bulkItem
			for _, it := range items {
				if !it.done {
					pending = append(pending, it)
				}
			}
			bd := &bulkDelivery{pubsub: c.sub.pubsub, topic: c.sub.topic, path: path, raw: c.sub.raw, entries: pending}
			outs, err := c.d.deliverBulk(ctx, bd)
			if err != nil {
				c.log.Warn("bulk delivery failed; retriable", "entries", len(pending), "err", err)
				return err
			}
			left := 0
			for _, it := range pending {
				o, ok := outs[it.id]
				if !ok {
					left++
					continue
				}
				it.done = true
				if o == outDrop {
					c.deadLetter(ctx, it.msg)
				}
			}
			if left > 0 {
				return fmt.Errorf("%d of %d entries to be retried", left, len(pending))
			}
			return nil
		})
		for _, it := range items {
			switch {
			case it.done:
				result[it.id] = nil
			case ctx.Err() != nil:
				result[it.id] = ctx.Err()
			default:
				result[it.id] = c.deadLetterOr(ctx, it.msg, err)
			}
		}
	}
	return result
}
