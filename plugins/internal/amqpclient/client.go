package amqpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message is one message to publish.
type Message struct {
	Body        []byte
	ContentType string
	Headers     map[string]string
	TTL         time.Duration // per-message expiration; 0 = the component's ttlInSeconds, if any
	MessageID   string
}

// Client is one AMQP connection (re-dialled when lost) with a publishing
// channel.
type Client struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	conn      *amqp.Connection
	pub       *amqp.Channel
	exchanges map[string]bool // declared on the current connection
	closed    bool
}

// New dials the broker.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Client, error) {
	c := &Client{cfg: cfg, log: log, exchanges: map[string]bool{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.connLocked(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Config returns the configuration the client was made with.
func (c *Client) Config() Config { return c.cfg }

// connLocked returns the live connection, dialling when there is none.
func (c *Client) connLocked(ctx context.Context) (*amqp.Connection, error) {
	if c.closed {
		return nil, errors.New("amqp client is closed")
	}
	if c.conn != nil && !c.conn.IsClosed() {
		return c.conn, nil
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(c.cfg.ClientName)
	deadline := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{
		Heartbeat:  c.cfg.Heartbeat,
		Properties: props,
		Dial:       amqp.DefaultDial(max(deadline, 100*time.Millisecond)),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redact(c.cfg.URL), err)
	}
	c.conn, c.pub = conn, nil
	clear(c.exchanges)
	return conn, nil
}

// channel opens a new channel on the live connection.
func (c *Client) channel(ctx context.Context) (*amqp.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.connLocked(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, nil
}

// DeclareExchange declares exchange (kind exchangeKind) on ch.
func (c *Client) DeclareExchange(ch *amqp.Channel, exchange string) error {
	if err := ch.ExchangeDeclare(exchange, c.cfg.ExchangeKind, c.cfg.Durable, c.cfg.DeletedWhenUnused, false, false, nil); err != nil {
		return fmt.Errorf("declare %s exchange %q: %w", c.cfg.ExchangeKind, exchange, err)
	}
	return nil
}

// publisher returns the publishing channel, declaring exchange on it once.
func (c *Client) publisher(ctx context.Context, exchange string) (*amqp.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.connLocked(ctx); err != nil {
		return nil, err
	}
	if c.pub == nil || c.pub.IsClosed() {
		ch, err := c.conn.Channel()
		if err != nil {
			return nil, fmt.Errorf("open channel: %w", err)
		}
		if c.cfg.PublisherConfirm {
			if err := ch.Confirm(false); err != nil {
				_ = ch.Close()
				return nil, fmt.Errorf("enable publisher confirms: %w", err)
			}
		}
		c.pub = ch
		clear(c.exchanges) // a failed declaration closed the old channel; declare again
	}
	if exchange != "" && !c.exchanges[exchange] {
		if err := c.DeclareExchange(c.pub, exchange); err != nil {
			return nil, err
		}
		c.exchanges[exchange] = true
	}
	return c.pub, nil
}

// Publish sends m to exchange with routingKey and, with publisher confirms,
// waits until the broker has taken it.
func (c *Client) Publish(ctx context.Context, exchange, routingKey string, m Message) error {
	ch, err := c.publisher(ctx, exchange)
	if err != nil {
		return err
	}
	p := amqp.Publishing{Body: m.Body, ContentType: m.ContentType, MessageId: m.MessageID, Timestamp: time.Now()}
	if c.cfg.Persistent {
		p.DeliveryMode = amqp.Persistent
	}
	if ttl := m.TTL; ttl > 0 || c.cfg.TTL > 0 {
		if ttl <= 0 {
			ttl = c.cfg.TTL
		}
		p.Expiration = strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	}
	if len(m.Headers) > 0 {
		p.Headers = amqp.Table{}
		for k, v := range m.Headers {
			p.Headers[k] = v
		}
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, routingKey, false, false, p)
	if err != nil {
		return fmt.Errorf("publish to exchange %q: %w", exchange, err)
	}
	if dc == nil { // not in confirm mode
		return nil
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("publish to exchange %q: waiting for the confirm: %w", exchange, err)
	}
	if !ok {
		return fmt.Errorf("publish to exchange %q: the broker refused the message (nack)", exchange)
	}
	return nil
}

// Ping checks the connection is up by opening and closing a channel.
func (c *Client) Ping(ctx context.Context) error {
	ch, err := c.channel(ctx)
	if err != nil {
		return err
	}
	return ch.Close()
}

// Close closes the connection; later calls fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil || c.conn.IsClosed() {
		return nil
	}
	return c.conn.Close()
}
