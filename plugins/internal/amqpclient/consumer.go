package amqpclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// QueueSpec says what Consume reads: Queue, bound to Exchange with
// RoutingKey (the exchange and binding are declared unless Exchange is "").
type QueueSpec struct {
	Exchange   string
	Queue      string
	RoutingKey string
}

// Delivery is one consumed message.
type Delivery struct {
	ID          string // delivery tag, unique on its channel
	Body        []byte
	ContentType string
	Headers     map[string]string
	Exchange    string
	RoutingKey  string
	MessageID   string
	Redelivered bool
}

// Handler processes one delivery: nil acks it, an error nacks it.
type Handler func(ctx context.Context, d *Delivery) error

// defaultParallelism bounds concurrent handlers when prefetchCount is 0.
const defaultParallelism = 256

// Consume reads spec.Queue until ctx ends (then it returns nil) or the
// channel or connection is lost (then it returns an error).
func (c *Client) Consume(ctx context.Context, spec QueueSpec, h Handler) error {
	if spec.Queue == "" {
		return errors.New("consume: no queue name")
	}
	ch, err := c.channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close() // unacked deliveries go back to the queue
	if err := c.declareQueue(ch, spec); err != nil {
		return err
	}
	if err := ch.Qos(c.cfg.PrefetchCount, 0, false); err != nil {
		return fmt.Errorf("set prefetch count %d: %w", c.cfg.PrefetchCount, err)
	}
	// cctx ends the handlers still running when Consume returns; their
	// deliveries stay unacked and are requeued when the channel closes
	// (which also cancels the consumer: no separate basic.cancel, whose
	// reply could race the close on the same channel).
	cctx, cancelHandlers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancelHandlers(); wg.Wait() }()
	deliveries, err := ch.Consume(spec.Queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume queue %q: %w", spec.Queue, err)
	}
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
			return fmt.Errorf("consume queue %q: the channel closed (connection lost?)", spec.Queue)
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil // d stays unacked: requeued when the channel closes
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			c.handle(cctx, d, h)
		}()
	}
}

func (c *Client) handle(ctx context.Context, d amqp.Delivery, h Handler) {
	err := h(ctx, toDelivery(d))
	switch {
	case err == nil:
		if aerr := d.Ack(false); aerr != nil {
			c.log.Warn("amqp ack failed; the message will come again", "tag", d.DeliveryTag, "err", aerr)
		}
	case ctx.Err() != nil:
		// Shutting down: leave it unacked; closing the channel requeues it
		// even when requeueInFailure is false.
	default:
		if nerr := d.Nack(false, c.cfg.RequeueInFailure); nerr != nil {
			c.log.Warn("amqp nack failed", "tag", d.DeliveryTag, "err", nerr)
		}
	}
}

// declareQueue declares the exchange, the queue (with its limits and dead
// letters) and the binding.
func (c *Client) declareQueue(ch *amqp.Channel, spec QueueSpec) error {
	if spec.Exchange != "" {
		if err := c.DeclareExchange(ch, spec.Exchange); err != nil {
			return err
		}
	}
	args := amqp.Table{}
	if c.cfg.MaxLen > 0 {
		args["x-max-length"] = c.cfg.MaxLen
	}
	if c.cfg.MaxLenBytes > 0 {
		args["x-max-length-bytes"] = c.cfg.MaxLenBytes
	}
	if c.cfg.EnableDeadLetter {
		dlx, dlq := "dlx-"+spec.Queue, "dlq-"+spec.Queue
		if err := ch.ExchangeDeclare(dlx, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare dead-letter exchange %q: %w", dlx, err)
		}
		if _, err := ch.QueueDeclare(dlq, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare dead-letter queue %q: %w", dlq, err)
		}
		if err := ch.QueueBind(dlq, "", dlx, false, nil); err != nil {
			return fmt.Errorf("bind dead-letter queue %q: %w", dlq, err)
		}
		args["x-dead-letter-exchange"] = dlx
	}
	if _, err := ch.QueueDeclare(spec.Queue, c.cfg.Durable, c.cfg.DeletedWhenUnused, false, false, args); err != nil {
		return fmt.Errorf("declare queue %q: %w", spec.Queue, err)
	}
	if spec.Exchange != "" {
		if err := ch.QueueBind(spec.Queue, spec.RoutingKey, spec.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %q to exchange %q: %w", spec.Queue, spec.Exchange, err)
		}
	}
	return nil
}

func toDelivery(d amqp.Delivery) *Delivery {
	out := &Delivery{
		ID:          strconv.FormatUint(d.DeliveryTag, 10),
		Body:        d.Body,
		ContentType: d.ContentType,
		Exchange:    d.Exchange,
		RoutingKey:  d.RoutingKey,
		MessageID:   d.MessageId,
		Redelivered: d.Redelivered,
	}
	for k, v := range d.Headers {
		if out.Headers == nil {
			out.Headers = map[string]string{}
		}
		out.Headers[k] = fmt.Sprint(v)
	}
	return out
}
