package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ContentTypeHeader is the record header carrying a message's content type.
const ContentTypeHeader = "content-type"

// Message is one record to produce.
type Message struct {
	Key         []byte // partition key; nil = spread over partitions
	Value       []byte
	Headers     map[string]string
	ContentType string // sent as the ContentTypeHeader header when set
}

// Record is one consumed record.
type Record struct {
	Topic       string
	Partition   int32
	Offset      int64
	Key         []byte
	Value       []byte
	Headers     map[string]string // every header but ContentTypeHeader
	ContentType string
	Timestamp   time.Time
}

// ID is a unique name of the record: topic/partition/offset.
func (r *Record) ID() string { return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset) }

// Client produces to and consumes from one Kafka cluster.
type Client struct {
	cfg      Config
	log      *slog.Logger
	producer *kgo.Client
}

// New connects a producing client and checks the cluster answers within ctx.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Client, error) {
	opts := append(cfg.baseOpts(log), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if cfg.MaxMessageBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(cfg.MaxMessageBytes))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("connect to kafka brokers %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	return &Client{cfg: cfg, log: log, producer: cl}, nil
}

// baseOpts are the options of every client: brokers, identity, auth.
func (c Config) baseOpts(log *slog.Logger) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.AllowAutoTopicCreation(),
		kgo.DialTimeout(c.DialTimeout),
		kgo.WithLogger(slogAdapter{log}),
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	switch c.SASLMechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	return opts
}

// Config returns the configuration the client was made with.
func (c *Client) Config() Config { return c.cfg }

// Publish produces msgs to topic and waits until the brokers acknowledged
// them. The result has one entry per message: nil or why it failed.
func (c *Client) Publish(ctx context.Context, topic string, msgs ...Message) []error {
	errs := make([]error, len(msgs))
	if topic == "" {
		for i := range errs {
			errs[i] = errors.New("topic is empty")
		}
		return errs
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		r := &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value}
		for k, v := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		if m.ContentType != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: ContentTypeHeader, Value: []byte(m.ContentType)})
		}
		recs[i] = r
	}
	results := c.producer.ProduceSync(ctx, recs...)
	for i, res := range results {
		if res.Err != nil {
			errs[i] = fmt.Errorf("produce to %s: %w", topic, res.Err)
		}
	}
	return errs
}

// Ping checks a broker answers.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.producer.Ping(ctx); err != nil {
		return fmt.Errorf("kafka ping: %w", err)
	}
	return nil
}

// Close flushes nothing (Publish is synchronous) and closes the producer.
func (c *Client) Close() error {
	c.producer.Close()
	return nil
}

func toRecord(r *kgo.Record) *Record {
	out := &Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		if h.Key == ContentTypeHeader {
			out.ContentType = string(h.Value)
			continue
		}
		if out.Headers == nil {
			out.Headers = map[string]string{}
		}
		out.Headers[h.Key] = string(h.Value)
	}
	return out
}

// slogAdapter sends kgo's warnings and errors to slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (a slogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelWarn
	if level == kgo.LogLevelError {
		l = slog.LevelError
	}
	a.log.Log(context.Background(), l, "kafka: "+msg, keyvals...)
}
