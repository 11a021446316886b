package kafkaclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/mdparse"
)

// Config is parsed component metadata. Field names follow Dapr's Kafka
// components (pubsub.kafka, bindings.kafka v1.14).
type Config struct {
	Brokers  []string
	Group    string // consumerGroup, else consumerID
	ClientID string

	// SASL (authType "password"): Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASLUsername, SASLPassword, SASLMechanism string
	TLS                                       *tls.Config // nil = plaintext

	// InitialOldest starts a group with no committed offset for a partition
	// at the oldest record (initialOffset "oldest"), else at the newest.
	InitialOldest        bool
	MaxMessageBytes      int32 // producer batch and fetch limit; 0 = client default (~1 MB)
	HeartbeatInterval    time.Duration
	SessionTimeout       time.Duration
	ConsumeRetryInterval time.Duration // first pause before retrying a nacked record
	CommitInterval       time.Duration
	DialTimeout          time.Duration
}

// ParseConfig reads component metadata; consumerID is the fallback group.
// Unknown keys are ignored, as Dapr ignores them.
func ParseConfig(md map[string]string) (Config, error) {
	c := Config{
		ClientID:             "outrigger",
		HeartbeatInterval:    3 * time.Second,
		SessionTimeout:       45 * time.Second,
		ConsumeRetryInterval: 100 * time.Millisecond,
		CommitInterval:       time.Second,
		DialTimeout:          10 * time.Second,
	}
	for _, b := range strings.Split(md["brokers"], ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Brokers = append(c.Brokers, b)
		}
	}
	if len(c.Brokers) == 0 {
		return c, errors.New("metadata brokers is required (comma-separated host:port list)")
	}
	c.Group = strings.TrimSpace(md["consumerGroup"])
	if c.Group == "" {
		c.Group = strings.TrimSpace(md["consumerID"])
	}
	if v := strings.TrimSpace(md["clientID"]); v != "" {
		c.ClientID = v
	}
	p := mdparse.New(md)
	switch a := strings.ToLower(strings.TrimSpace(md["authType"])); a {
	case "", "none":
		if p.Bool("authRequired", false) {
			return c, errors.New("metadata authRequired=true: set authType to password instead")
		}
	case "password":
		c.SASLUsername, c.SASLPassword = md["saslUsername"], md["saslPassword"]
		if c.SASLUsername == "" {
			return c, errors.New("metadata authType=password needs saslUsername and saslPassword")
		}
		c.SASLMechanism = strings.ToUpper(strings.TrimSpace(md["saslMechanism"]))
		switch c.SASLMechanism {
		case "":
			c.SASLMechanism = "PLAIN"
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return c, fmt.Errorf("metadata saslMechanism=%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", md["saslMechanism"])
		}
		if !p.Bool("disableTls", false) {
			c.TLS = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: p.Bool("skipVerify", false)} //nolint:gosec // opt-in
		}
	default:
		return c, fmt.Errorf("metadata authType=%q is not supported (none or password)", a)
	}
	switch o := strings.ToLower(strings.TrimSpace(md["initialOffset"])); o {
	case "", "newest":
	case "oldest":
		c.InitialOldest = true
	default:
		return c, fmt.Errorf("metadata initialOffset=%q: want newest or oldest", md["initialOffset"])
	}
	if n := p.Int("maxMessageBytes", 0); n != 0 {
		if n < 1024 || n > 1<<30 {
			return c, fmt.Errorf("metadata maxMessageBytes=%d: want 1024 to 1073741824", n)
		}
		c.MaxMessageBytes = int32(n)
	}
	c.HeartbeatInterval = p.Duration("heartbeatInterval", c.HeartbeatInterval, time.Millisecond)
	c.SessionTimeout = p.Duration("sessionTimeout", c.SessionTimeout, time.Millisecond)
	c.ConsumeRetryInterval = p.Duration("consumeRetryInterval", c.ConsumeRetryInterval, time.Millisecond)
	c.CommitInterval = p.Duration("commitInterval", c.CommitInterval, time.Millisecond)
	c.DialTimeout = p.Duration("dialTimeout", c.DialTimeout, time.Millisecond)
	if p.Err() != nil {
		return c, p.Err()
	}
	for name, d := range map[string]time.Duration{"heartbeatInterval": c.HeartbeatInterval, "sessionTimeout": c.SessionTimeout,
		"consumeRetryInterval": c.ConsumeRetryInterval, "commitInterval": c.CommitInterval, "dialTimeout": c.DialTimeout} {
		if d <= 0 {
			return c, fmt.Errorf("metadata %s=%v: must be positive", name, d)
		}
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return c, fmt.Errorf("metadata heartbeatInterval=%v must be shorter than sessionTimeout=%v", c.HeartbeatInterval, c.SessionTimeout)
	}
	return c, nil
}
