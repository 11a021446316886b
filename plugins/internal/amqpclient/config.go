package amqpclient

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/mdparse"
)

// Config is parsed component metadata. Field names follow Dapr's RabbitMQ
// components (pubsub.rabbitmq, bindings.rabbitmq v1.14).
type Config struct {
	URL        string // amqp[s]://user:pass@host:port/vhost
	ConsumerID string

	Durable           bool // exchanges and queues survive a broker restart
	DeletedWhenUnused bool // auto-delete queues (and exchanges) when unused
	RequeueInFailure  bool // a nack requeues the message
	PrefetchCount     int  // unacked deliveries per consumer; 0 = unlimited
	Single            bool // concurrencyMode single: one message at a time
	PublisherConfirm  bool
	Persistent        bool          // deliveryMode 2
	TTL               time.Duration // default per-message TTL; 0 = none
	MaxLen            int64         // queue x-max-length; 0 = none
	MaxLenBytes       int64         // queue x-max-length-bytes; 0 = none
	ExchangeKind      string
	EnableDeadLetter  bool
	ClientName        string
	Heartbeat         time.Duration
	ReconnectWait     time.Duration
}

// ParseConfig reads component metadata. Defaults differ from Dapr's where
// Dapr's would lose messages (see README): durable queues, not deleted when
// unused, nacks requeued, publisher confirms on. Unknown keys are ignored.
func ParseConfig(md map[string]string) (Config, error) {
	c := Config{
		Durable:           true,
		DeletedWhenUnused: false,
		RequeueInFailure:  true,
		PublisherConfirm:  true,
		ExchangeKind:      "fanout",
		ClientName:        "outrigger",
		Heartbeat:         10 * time.Second,
		ReconnectWait:     3 * time.Second,
	}
	c.URL = strings.TrimSpace(md["connectionString"])
	if c.URL == "" {
		c.URL = strings.TrimSpace(md["host"]) // Dapr's older name for the same URL
	}
	if c.URL == "" && md["hostname"] != "" {
		u := url.URL{Scheme: "amqp", Host: md["hostname"]}
		if p := strings.TrimSpace(md["protocol"]); p != "" {
			u.Scheme = p
		}
		if md["username"] != "" {
			u.User = url.UserPassword(md["username"], md["password"])
		}
		c.URL = u.String()
	}
	if c.URL == "" {
		return c, errors.New("metadata connectionString is required (amqp://user:pass@host:5672)")
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return c, fmt.Errorf("metadata connectionString: %q is not an amqp:// or amqps:// URL", redact(c.URL))
	}
	c.ConsumerID = strings.TrimSpace(md["consumerID"])
	if v := strings.TrimSpace(md["clientName"]); v != "" {
		c.ClientName = v
	}
	p := mdparse.New(md)
	c.Durable = p.Bool("durable", c.Durable)
	c.DeletedWhenUnused = p.Bool("deletedWhenUnused", c.DeletedWhenUnused)
	c.RequeueInFailure = p.Bool("requeueInFailure", c.RequeueInFailure)
	c.PublisherConfirm = p.Bool("publisherConfirm", c.PublisherConfirm)
	c.EnableDeadLetter = p.Bool("enableDeadLetter", false)
	c.PrefetchCount = p.Int("prefetchCount", 0)
	c.MaxLen = int64(p.Int("maxLen", 0))
	c.MaxLenBytes = int64(p.Int("maxLenBytes", 0))
	if ttl := p.Int("ttlInSeconds", 0); ttl > 0 {
		c.TTL = time.Duration(ttl) * time.Second
	}
	switch m := strings.TrimSpace(md["deliveryMode"]); m {
	case "", "0", "1":
	case "2":
		c.Persistent = true
	default:
		return c, fmt.Errorf("metadata deliveryMode=%q: want 1 (transient) or 2 (persistent)", m)
	}
	switch m := strings.ToLower(strings.TrimSpace(md["concurrencyMode"])); m {
	case "", "parallel":
	case "single":
		c.Single = true
	default:
		return c, fmt.Errorf("metadata concurrencyMode=%q: want parallel or single", m)
	}
	switch k := strings.ToLower(strings.TrimSpace(md["exchangeKind"])); k {
	case "":
	case "fanout", "topic", "direct", "headers":
		c.ExchangeKind = k
	default:
		return c, fmt.Errorf("metadata exchangeKind=%q: want fanout, topic, direct or headers", k)
	}
	c.Heartbeat = p.Duration("heartBeat", c.Heartbeat, time.Second)
	if s := p.Int("reconnectWaitSeconds", -1); s >= 0 {
		c.ReconnectWait = time.Duration(s) * time.Second
	}
	if p.Err() != nil {
		return c, p.Err()
	}
	switch {
	case c.PrefetchCount < 0 || c.PrefetchCount > 65535:
		return c, fmt.Errorf("metadata prefetchCount=%d: want 0 (unlimited) to 65535", c.PrefetchCount)
	case c.MaxLen < 0 || c.MaxLenBytes < 0:
		return c, errors.New("metadata maxLen and maxLenBytes must not be negative")
	case c.Heartbeat < 0:
		return c, errors.New("metadata heartBeat must not be negative")
	}
	return c, nil
}

// redact hides a URL's password for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
