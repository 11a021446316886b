package amqpclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Queue is one named queue its user declares with its own flags and
// arguments, reached through the default exchange (routing key = queue
// name): bindings.rabbitmq reads and writes such a queue, declared as Dapr's
// bindings.rabbitmq declares it so queues made by either are compatible.
type Queue struct {
	Name       string
	Durable    bool
	AutoDelete bool // deleteWhenUnused: deleted when its last consumer leaves
	// Exclusive queues belong to this client's connection (gone when it
	// closes) and are consumed by one consumer only.
	Exclusive   bool
	MessageTTL  time.Duration // x-message-ttl; 0 = none
	MaxPriority *uint8        // x-max-priority; nil = none
}

// Args returns the queue's declaration arguments.
func (q Queue) Args() amqp.Table {
	args := amqp.Table{}
	if q.MessageTTL > 0 {
		args[amqp.QueueMessageTTLArg] = max(q.MessageTTL.Milliseconds(), 1)
	}
	if q.MaxPriority != nil {
		args["x-max-priority"] = *q.MaxPriority
	}
	return args
}

func (q Queue) declare(ch *amqp.Channel) error {
	if q.Name == "" {
		return errors.New("declare queue: no queue name")
	}
	if _, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, q.Args()); err != nil {
		return fmt.Errorf("declare queue %q: %w", q.Name, err)
	}
	return nil
}

// DeclareQueue declares q on a channel of its own (a declaration the broker
// refuses closes only that channel).
func (c *Client) DeclareQueue(ctx context.Context, q Queue) error {
	ch, err := c.channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close()
	return q.declare(ch)
}

// ConsumeQueue declares q and reads it as Consume reads a QueueSpec's
// queue: until ctx ends (then nil) or the channel or connection is lost
// (then an error), with the prefetch, concurrency and ack/nack rules of the
// client's Config. An exclusive queue is consumed exclusively.
func (c *Client) ConsumeQueue(ctx context.Context, q Queue, h Handler) error {
	ch, err := c.channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close() // unacked deliveries go back to the queue
	if err := q.declare(ch); err != nil {
		return err
	}
	if err := ch.Qos(c.cfg.PrefetchCount, 0, false); err != nil {
		return fmt.Errorf("set prefetch count %d: %w", c.cfg.PrefetchCount, err)
	}
	deliveries, err := ch.Consume(q.Name, "", false, q.Exclusive, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume queue %q: %w", q.Name, err)
	}
	return c.dispatch(ctx, q.Name, deliveries, h)
}

// dispatch hands deliveries to h (one at a time in concurrencyMode single,
// else up to prefetchCount or defaultParallelism at once) until ctx ends or
// the deliveries channel closes, and waits for the running handlers.
func (c *Client) dispatch(ctx context.Context, queue string, deliveries <-chan amqp.Delivery, h Handler) error {
	// hctx ends the handlers still running on return; their deliveries stay
	// unacked and are requeued when the caller closes the channel.
	hctx, cancelHandlers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancelHandlers(); wg.Wait() }()
	parallel := defaultParallelism
	switch {
	case c.cfg.Single:
		parallel = 1
	case c.cfg.PrefetchCount > 0:
		parallel = c.cfg.PrefetchCount
	}
	slots := make(chan struct{}, parallel)
	for {
		var d amqp.Delivery
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case d, ok = <-deliveries:
		}
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consume queue %q: the channel closed (connection lost?)", queue)
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			c.handle(hctx, d, h)
		}()
	}
}
