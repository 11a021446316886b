package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/outrigger/outrigger/plugins/sdk"
)

const connectTimeout = 10 * time.Second

// sessionExpiry keeps the input session (and its unacknowledged messages)
// on the server across reconnects unless cleanSession is set.
const sessionExpiry = 3600

func clientConfig(c config, clientID string, log *slog.Logger) autopaho.ClientConfig {
	return autopaho.ClientConfig{
		ServerUrls:        []*url.URL{c.url},
		TlsCfg:            c.tls,
		KeepAlive:         20,
		ConnectRetryDelay: time.Second,
		ConnectTimeout:    connectTimeout,
		OnConnectError: func(err error) {
			log.Warn("mqtt connect failed; retrying", "client", clientID, "err", err)
		},
		ClientConfig: paho.ClientConfig{ClientID: clientID},
	}
}

// Output is the output side of bindings.mqtt3: create publishes.
type Output struct {
	log *slog.Logger
	cfg config
	cm  *autopaho.ConnectionManager
}

// NewOutput returns an uninitialised output binding.
func NewOutput(log *slog.Logger) *Output { return &Output{log: log} }

// Init connects the publisher (client id consumerID + "-out", so it never
// takes over the input side's session).
func (o *Output) Init(ctx context.Context, md sdk.Metadata) error {
	c, err := parse(md)
	if err != nil {
		return err
	}
	cfg := clientConfig(c, c.clientID+"-out", o.log)
	cfg.CleanStartOnInitialConnection = true
	cm, err := autopaho.NewConnection(context.Background(), cfg)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := cm.AwaitConnection(actx); err != nil {
		_ = cm.Disconnect(context.Background())
		return fmt.Errorf("connecting to %s: %w", c.url.Redacted(), err)
	}
	o.cfg, o.cm = c, cm
	return nil
}

// Close disconnects.
func (o *Output) Close() error {
	if o.cm == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return o.cm.Disconnect(ctx)
}

// Operations: create publishes the data.
func (o *Output) Operations() []string { return []string{sdk.OperationCreate} }

// Invoke publishes req.Data to the component's topic, or request metadata
// "topic"; request metadata "retain" overrides the component's.
func (o *Output) Invoke(ctx context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	if o.cm == nil {
		return nil, errors.New("mqtt3 binding is not initialised")
	}
	topic, retain := o.cfg.topic, o.cfg.retain
	if t := req.Metadata["topic"]; t != "" {
		topic = t
	}
	if v, ok := req.Metadata["retain"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("metadata retain=%q: %w", v, sdk.ErrBadRequest)
		}
		retain = b
	}
	if _, err := o.cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: o.cfg.qos, Retain: retain, Payload: req.Data}); err != nil {
		return nil, fmt.Errorf("publishing to %s: %w", topic, err)
	}
	return nil, nil
}

// Input is the input side of bindings.mqtt3: it subscribes to the topic.
type Input struct {
	log *slog.Logger
	cfg config
}

// NewInput returns an uninitialised input binding.
func NewInput(log *slog.Logger) *Input { return &Input{log: log} }

// Init checks the metadata and that the server accepts a connection.
func (in *Input) Init(ctx context.Context, md sdk.Metadata) error {
	c, err := parse(md)
	if err != nil {
		return err
	}
	cfg := clientConfig(c, c.clientID+"-probe", in.log)
	cfg.CleanStartOnInitialConnection = true
	cm, err := autopaho.NewConnection(context.Background(), cfg)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	err = cm.AwaitConnection(actx)
	_ = cm.Disconnect(context.Background())
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", c.url.Redacted(), err)
	}
	in.cfg = c
	return nil
}

// Read connects with the consumerID as client id and a session kept on the
// server (unless cleanSession), subscribes, and hands each message to h in
// arrival order. A message is acknowledged once h accepted it, or once
// backOffMaxRetries further tries failed (it is then dropped, as in Dapr);
// a message still unacknowledged when Read ends is redelivered by the
// server when the next Read resumes the session.
func (in *Input) Read(ctx context.Context, h sdk.BindingHandler) error {
	if in.cfg.url == nil {
		return errors.New("mqtt3 binding is not initialised")
	}
	msgs := make(chan paho.PublishReceived, 256)
	cfg := clientConfig(in.cfg, in.cfg.clientID, in.log)
	cfg.CleanStartOnInitialConnection = in.cfg.cleanSession
	if !in.cfg.cleanSession {
		cfg.SessionExpiryInterval = sessionExpiry
	}
	cfg.EnableManualAcknowledgment = true
	cfg.SendAcksInterval = 50 * time.Millisecond
	cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
		select {
		case msgs <- pr:
		case <-ctx.Done():
		}
		return true, nil
	}}
	cfg.OnConnectionUp = func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
		go func() {
			sctx, cancel := context.WithTimeout(ctx, connectTimeout)
			defer cancel()
			if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: in.cfg.topic, QoS: in.cfg.qos}}}); err != nil && ctx.Err() == nil {
				in.log.Error("mqtt subscribe failed", "topic", in.cfg.topic, "err", err)
			}
		}()
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cm.Disconnect(dctx)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case pr := <-msgs:
			if in.handle(ctx, h, pr.Packet) {
				if err := pr.Client.Ack(pr.Packet); err != nil {
					in.log.Warn("mqtt ack failed", "topic", pr.Packet.Topic, "err", err)
				}
			}
		}
	}
}

// handle delivers one message with retries; false means "leave it
// unacknowledged" (Read is ending).
func (in *Input) handle(ctx context.Context, h sdk.BindingHandler, p *paho.Publish) bool {
	ev := &sdk.BindingEvent{Data: p.Payload, Metadata: map[string]string{"topic": p.Topic, "retained": strconv.FormatBool(p.Retain)}}
	for try := 0; ; try++ {
		_, err := h(ctx, ev)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if in.cfg.backOffMaxRetries >= 0 && try >= in.cfg.backOffMaxRetries {
			in.log.Error("mqtt message dropped after retries", "topic", p.Topic, "tries", try+1, "err", err)
			return true
		}
		select {
		case <-time.After(in.cfg.retryDelay):
		case <-ctx.Done():
			return false
		}
	}
}
