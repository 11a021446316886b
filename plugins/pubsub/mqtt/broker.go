package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/outrigger/outrigger/plugins/sdk"
)

const (
	// connectTimeout bounds Init's wait for the publishing connection.
	connectTimeout = 10 * time.Second
	// maxRetryFactor caps the pause before re-offering a nacked message.
	maxRetryFactor = 32
	// disconnectTimeout bounds a clean DISCONNECT.
	disconnectTimeout = 5 * time.Second
)

// Broker is the pubsub.mqtt component.
type Broker struct {
	log     *slog.Logger
	cfg     config
	pub     *autopaho.ConnectionManager
	stopPub context.CancelFunc // ends the publishing connection manager

	mu sync.Mutex
	// slots are the client-id slots per topic: slot 0 is the base id, slot n
	// the n-th concurrent extra. A slot is in use while its subscription
	// runs and until its connection has closed (then done is closed).
	slots map[string][]*slot
}

// New returns an unconfigured broker; the SDK calls Init.
func New(log *slog.Logger) sdk.PubSub { return &Broker{log: log, slots: map[string][]*slot{}} }

// slot is one client id in use; done is closed when it is free again.
// releasing is set (and closed with done) while its connection closes.
type slot struct {
	done      chan struct{}
	releasing chan struct{}
}

func (sl *slot) free() bool {
	if sl == nil {
		return true
	}
	select {
	case <-sl.done:
		return true
	default:
		return false
	}
}

var (
	_ sdk.MessageTTLer = (*Broker)(nil)
	_ sdk.Pinger       = (*Broker)(nil)
	_ sdk.Closer       = (*Broker)(nil)
)

// MessageTTL marks that ttlInSeconds becomes the MQTT 5 message expiry: the
// server discards an expired message instead of delivering it.
func (b *Broker) MessageTTL() {}

// clientConfig is the autopaho configuration shared by every connection.
func (b *Broker) clientConfig(clientID string) autopaho.ClientConfig {
	c := autopaho.ClientConfig{
		ServerUrls:        []*url.URL{b.cfg.url},
		TlsCfg:            b.cfg.tls,
		KeepAlive:         uint16(b.cfg.keepAlive / time.Second),
		ConnectRetryDelay: time.Second,
		ConnectTimeout:    connectTimeout,
		ConnectUsername:   b.cfg.username,
		OnConnectError: func(err error) {
			b.log.Warn("mqtt connect failed; retrying", "client", clientID, "err", err)
		},
		ClientConfig: paho.ClientConfig{ClientID: clientID},
	}
	if b.cfg.password != "" {
		c.ConnectPassword = []byte(b.cfg.password)
	}
	return c
}

// Init parses the metadata and opens the publishing connection.
func (b *Broker) Init(ctx context.Context, md sdk.Metadata) error {
	cfg, err := parse(md)
	if err != nil {
		return fmt.Errorf("pubsub.mqtt: %w", err)
	}
	b.cfg = cfg
	pctx, stop := context.WithCancel(context.Background())
	cc := b.clientConfig(cfg.clientID + "-pub")
	cc.CleanStartOnInitialConnection = true
	var lastErr atomic.Value
	cc.OnConnectError = func(err error) { lastErr.Store(err) }
	cm, err := autopaho.NewConnection(pctx, cc)
	if err != nil {
		stop()
		return fmt.Errorf("pubsub.mqtt: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := cm.AwaitConnection(actx); err != nil {
		stop()
		if le, ok := lastErr.Load().(error); ok {
			err = le
		}
		return fmt.Errorf("pubsub.mqtt: connect to %s: %w", cfg.url.Redacted(), err)
	}
	b.pub, b.stopPub = cm, stop
	return nil
}

// Close disconnects the publisher; safe on a broker never initialised.
func (b *Broker) Close() error {
	if b.pub == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	err := b.pub.Disconnect(ctx)
	b.stopPub()
	b.pub = nil
	if err != nil && !errors.Is(err, autopaho.ConnectionDownError) {
		return fmt.Errorf("pubsub.mqtt: disconnect: %w", err)
	}
	return nil
}

// Ping checks the publishing connection is up.
func (b *Broker) Ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := b.pub.AwaitConnection(pctx); err != nil {
		return fmt.Errorf("pubsub.mqtt: not connected to %s: %w", b.cfg.url.Redacted(), err)
	}
	return nil
}

// Publish sends one PUBLISH (qos, retain) and, for QoS 1 and 2, waits for
// the server's acknowledgement.
func (b *Broker) Publish(ctx context.Context, req *sdk.PublishRequest) error {
	if req.Topic == "" {
		return errors.New("pubsub.mqtt: topic is empty")
	}
	ttl, hasTTL, err := sdk.ParseTTL(req.Metadata)
	if err != nil {
		return fmt.Errorf("pubsub.mqtt: %w", err)
	}
	props := &paho.PublishProperties{ContentType: req.ContentType}
	for k, v := range req.Metadata {
		if k != sdk.TTLMetadataKey {
			props.User.Add(k, v)
		}
	}
	if hasTTL {
		secs := uint32(min(max(ttl/time.Second, 1), time.Duration(^uint32(0))))
		props.MessageExpiry = &secs
	}
	resp, err := b.pub.Publish(ctx, &paho.Publish{QoS: b.cfg.qos, Retain: b.cfg.retain, Topic: req.Topic, Payload: req.Data, Properties: props})
	if err != nil {
		return fmt.Errorf("pubsub.mqtt: publish to %s: %w", req.Topic, err)
	}
	if resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("pubsub.mqtt: publish to %s refused: reason code 0x%02x", req.Topic, resp.ReasonCode)
	}
	return nil
}

// enter takes the lowest free client-id slot of a topic and returns its
// stable client id: the instance's base id, a hash of the topic, and a
// suffix for concurrent extras. A restarted subscription reuses the id and
// so resumes its session with the messages it had not acknowledged. If a
// lower slot is still being released (the previous subscription is
// disconnecting), enter waits for it rather than take another id, whose
// session would not hold those messages.
func (b *Broker) enter(ctx context.Context, topic string) (id string, sl *slot, err error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic))
	base := b.cfg.clientID + "-" + strconv.FormatUint(uint64(h.Sum32()), 36)
	for {
		b.mu.Lock()
		slots := b.slots[topic]
		n := 0
		for n < len(slots) && !slots[n].free() {
			n++
		}
		var wait chan struct{}
		for k := 0; k < n; k++ {
			if slots[k].releasing != nil {
				wait = slots[k].releasing
				break
			}
		}
		if wait == nil {
			sl := &slot{done: make(chan struct{})}
			if n == len(slots) {
				slots = append(slots, sl)
			} else {
				slots[n] = sl
			}
			b.slots[topic] = slots
			b.mu.Unlock()
			id = base
			if n > 0 {
				id += "-" + strconv.Itoa(n)
			}
			return id, sl, nil
		}
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(2 * disconnectTimeout):
			return "", nil, fmt.Errorf("pubsub.mqtt: the previous subscription to %s did not disconnect", topic)
		}
	}
}

// releasing marks a slot as on its way out (its connection is closing).
func (b *Broker) releasing(sl *slot) {
	b.mu.Lock()
	sl.releasing = make(chan struct{})
	b.mu.Unlock()
}

// leave frees a slot once its connection has closed.
func (b *Broker) leave(topic string, sl *slot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(sl.done)
	if sl.releasing != nil {
		close(sl.releasing)
		sl.releasing = nil
	}
	slots := b.slots[topic]
	for len(slots) > 0 && slots[len(slots)-1].free() {
		slots = slots[:len(slots)-1]
	}
	if len(slots) == 0 {
		delete(b.slots, topic)
	} else {
		b.slots[topic] = slots
	}
}

// Subscribe holds the shared subscription $share/<consumerID>/<topic> on a
// persistent session until ctx ends.
func (b *Broker) Subscribe(ctx context.Context, req sdk.SubscribeRequest, h sdk.MessageHandler) error {
	topic := req.Topic
	if topic == "" {
		return errors.New("pubsub.mqtt: subscribe: topic is empty")
	}
	clientID, sl, err := b.enter(ctx, topic)
	if err != nil {
		return err
	}
	defer b.leave(topic, sl)
	filter := "$share/" + b.cfg.consumerID + "/" + topic

	hctx, cancelHandlers := context.WithCancel(ctx)
	defer cancelHandlers()
	slots := make(chan struct{}, sdk.MaxInFlightPerStream)
	var wg sync.WaitGroup
	var seq atomic.Uint64

	cc := b.clientConfig(clientID)
	cc.CleanStartOnInitialConnection = b.cfg.cleanSession
	if !b.cfg.cleanSession {
		cc.SessionExpiryInterval = uint32(b.cfg.sessionExpiry / time.Second)
	}
	cc.EnableManualAcknowledgment = true
	cc.OnConnectionUp = func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
		go func() {
			_, err := cm.Subscribe(hctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: b.cfg.qos}}})
			if err != nil && hctx.Err() == nil {
				b.log.Error("mqtt subscribe failed", "filter", filter, "err", err)
			}
		}()
	}
	cc.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
		select {
		case slots <- struct{}{}:
		case <-hctx.Done():
			return true, nil // unacked: the session delivers it again
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			b.deliver(hctx, topic, strconv.FormatUint(seq.Add(1), 10), pr, h)
		}()
		return true, nil
	}}
	connCtx, stopConn := context.WithCancel(context.Background())
	defer stopConn()
	cm, err := autopaho.NewConnection(connCtx, cc)
	if err != nil {
		return fmt.Errorf("pubsub.mqtt: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-cm.Done():
		if ctx.Err() == nil {
			return fmt.Errorf("pubsub.mqtt: connection manager for %s stopped", filter)
		}
	}
	// Handlers still waiting end now unacked; then leave cleanly, keeping
	// the session (and its unacked messages) for the next subscription,
	// which waits for this one to be gone before reusing its client id.
	b.releasing(sl)
	cancelHandlers()
	wg.Wait()
	dctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	_ = cm.Disconnect(dctx)
	return nil
}

// deliver offers one message to the handler until it is acknowledged
// (then it is PUBACKed) or the subscription ends (then it stays unacked in
// the server's session). A nack re-offers it after a growing pause.
func (b *Broker) deliver(ctx context.Context, topic, id string, pr paho.PublishReceived, h sdk.MessageHandler) {
	p := pr.Packet
	m := &sdk.Message{ID: id, Topic: topic, Data: p.Payload}
	if p.Properties != nil {
		m.ContentType = p.Properties.ContentType
		if len(p.Properties.User) > 0 {
			m.Metadata = make(map[string]string, len(p.Properties.User))
			for _, u := range p.Properties.User {
				m.Metadata[u.Key] = u.Value
			}
		}
	}
	pause := b.cfg.retryInterval
	for {
		err := h(ctx, m)
		if err == nil {
			if aerr := pr.Client.Ack(p); aerr != nil {
				b.log.Warn("mqtt ack failed; the message will come again", "topic", topic, "err", aerr)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, maxRetryFactor*b.cfg.retryInterval)
	}
}
