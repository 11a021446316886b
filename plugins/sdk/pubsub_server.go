package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// subscribeStopTimeout bounds how long a closed stream waits for the
// plugin's Subscribe to return before giving up on it (and logging).
const subscribeStopTimeout = 10 * time.Second

// errStreamClosed is what a handler returns (a nack) when the host's stream
// ended before the message was acknowledged.
var errStreamClosed = errors.New("subscription stream closed before the message was acknowledged")

// errNacked is wrapped by the handler's error when the host nacked.
var errNacked = errors.New("message not acknowledged by the subscriber")

// pubsubServer implements the PubSub service over many instances, one per
// x-component-instance value, each created by newPubSub at Init.
type pubsubServer struct {
	componentsv1.UnimplementedPubSubServer

	newPubSub func() PubSub
	probe     PubSub // never Init'ed; tells which capabilities the type has
	logger    *slog.Logger

	mu        sync.RWMutex
	instances map[string]PubSub
}

func newPubSubServer(newPubSub func() PubSub, logger *slog.Logger) (*pubsubServer, error) {
	probe := newPubSub()
	if probe == nil {
		return nil, errors.New("pub/sub factory returned nil")
	}
	return &pubsubServer{newPubSub: newPubSub, probe: probe, logger: logger, instances: map[string]PubSub{}}, nil
}

func (s *pubsubServer) register(r grpc.ServiceRegistrar) {
	componentsv1.RegisterPubSubServer(r, s)
}

func (s *pubsubServer) closeAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, ps := range s.instances {
		if c, ok := ps.(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("instance %q: %w", name, err))
			}
		}
		delete(s.instances, name)
	}
	return errors.Join(errs...)
}

func (s *pubsubServer) instance(ctx context.Context) (PubSub, error) {
	name := instanceName(ctx)
	s.mu.RLock()
	ps, ok := s.instances[name]
	s.mu.RUnlock()
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition,
			"pub/sub instance %q is not initialised: call Init first (instance named by gRPC metadata %s)",
			name, InstanceMetadataKey)
	}
	return ps, nil
}

func (s *pubsubServer) Init(ctx context.Context, req *componentsv1.PubSubInitRequest) (*componentsv1.PubSubInitResponse, error) {
	name := instanceName(ctx)
	ps := s.newPubSub()
	if ps == nil {
		return nil, status.Error(codes.Internal, "pub/sub factory returned nil")
	}
	md := Metadata(req.GetMetadata().GetProperties())
	if md == nil {
		md = Metadata{}
	}
	if err := ps.Init(ctx, md); err != nil {
		if c, ok := ps.(Closer); ok {
			_ = c.Close()
		}
		s.logger.Error("init failed", "instance", name, "err", err)
		return nil, wireError(fmt.Errorf("init %q: %w", name, err))
	}
	s.mu.Lock()
	old := s.instances[name]
	s.instances[name] = ps
	s.mu.Unlock()
	if c, ok := old.(Closer); ok && old != nil {
		if err := c.Close(); err != nil {
			s.logger.Warn("closing replaced instance", "instance", name, "err", err)
		}
	}
	s.logger.Info("initialised", "instance", name, "features", PubSubFeatures(ps))
	return &componentsv1.PubSubInitResponse{}, nil
}

func (s *pubsubServer) Features(ctx context.Context, _ *componentsv1.FeaturesRequest) (*componentsv1.FeaturesResponse, error) {
	ps := s.probe
	s.mu.RLock()
	if inst, ok := s.instances[instanceName(ctx)]; ok {
		ps = inst
	}
	s.mu.RUnlock()
	return &componentsv1.FeaturesResponse{Features: PubSubFeatures(ps)}, nil
}

func (s *pubsubServer) Ping(ctx context.Context, _ *componentsv1.PingRequest) (*componentsv1.PingResponse, error) {
	ps, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := ps.(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return nil, wireError(fmt.Errorf("ping: %w", err))
		}
	}
	return &componentsv1.PingResponse{}, nil
}

func (s *pubsubServer) Publish(ctx context.Context, req *componentsv1.PublishRequest) (*componentsv1.PublishResponse, error) {
	ps, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetTopic() == "" {
		return nil, status.Error(codes.InvalidArgument, "publish: topic is empty")
	}
	err = ps.Publish(ctx, &PublishRequest{
		Topic:       req.GetTopic(),
		Data:        req.GetData(),
		Metadata:    req.GetMetadata(),
		ContentType: req.GetContentType(),
	})
	if err != nil {
		return nil, wireError(fmt.Errorf("publish to %q: %w", req.GetTopic(), err))
	}
	return &componentsv1.PublishResponse{}, nil
}

func (s *pubsubServer) BulkPublish(ctx context.Context, req *componentsv1.BulkPublishRequest) (*componentsv1.BulkPublishResponse, error) {
	ps, err := s.instance(ctx)
	if err != nil {
		return nil, err
	}
	topic := req.GetTopic()
	if topic == "" {
		return nil, status.Error(codes.InvalidArgument, "bulk publish: topic is empty")
	}
	entries := make([]BulkEntry, len(req.GetEntries()))
	for i, e := range req.GetEntries() {
		entries[i] = BulkEntry{EntryID: e.GetEntryId(), Data: e.GetEvent(), ContentType: e.GetContentType(), Metadata: e.GetMetadata()}
	}
	var failed []BulkFailure
	if bp, ok := ps.(BulkPublisher); ok {
		failed, err = bp.BulkPublish(ctx, topic, entries, req.GetMetadata())
		if err != nil {
			return nil, wireError(fmt.Errorf("bulk publish to %q: %w", topic, err))
		}
	} else {
		for _, e := range entries {
			md := mergeMetadata(req.GetMetadata(), e.Metadata)
			err := ps.Publish(ctx, &PublishRequest{Topic: topic, Data: e.Data, Metadata: md, ContentType: e.ContentType})
			if err != nil {
				failed = append(failed, BulkFailure{EntryID: e.EntryID, Error: err.Error()})
			}
		}
	}
	out := &componentsv1.BulkPublishResponse{}
	for _, f := range failed {
		out.FailedEntries = append(out.FailedEntries, &componentsv1.BulkPublishResponseFailedEntry{EntryId: f.EntryID, Error: f.Error})
	}
	return out, nil
}

// mergeMetadata overlays entry metadata on request metadata (entry wins).
func mergeMetadata(req, entry map[string]string) map[string]string {
	if len(req) == 0 {
		return entry
	}
	if len(entry) == 0 {
		return req
	}
	out := make(map[string]string, len(req)+len(entry))
	for k, v := range req {
		out[k] = v
	}
	for k, v := range entry {
		out[k] = v
	}
	return out
}

// PullMessages serves one subscription: the first request names the topic;
// the plugin's Subscribe then runs until the stream ends, each message is
// sent on the stream and its handler call waits for the ack with the same id.
func (s *pubsubServer) PullMessages(stream componentsv1.PubSub_PullMessagesServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	topic := first.GetTopic()
	if topic.GetName() == "" {
		return status.Error(codes.InvalidArgument, "PullMessages: the first request must name the topic")
	}
	ps, err := s.instance(stream.Context())
	if err != nil {
		return err
	}
	name := instanceName(stream.Context())
	log := s.logger.With("instance", name, "topic", topic.GetName())

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	sub := &subscription{
		stream:  stream,
		topic:   topic.GetName(),
		slots:   make(chan struct{}, MaxInFlightPerStream),
		pending: map[string]chan error{},
		done:    make(chan struct{}),
		log:     log,
	}
	subDone := make(chan error, 1)
	go func() {
		subDone <- ps.Subscribe(ctx, SubscribeRequest{Topic: topic.GetName(), Metadata: topic.GetMetadata()}, sub.handle)
	}()
	recvDone := make(chan error, 1)
	go func() { recvDone <- sub.recvAcks() }()
	log.Debug("subscription started")

	select {
	case err := <-subDone:
		// The plugin ended the subscription on its own.
		cancel()
		sub.close()
		if err != nil {
			log.Error("subscription failed", "err", err)
			return wireError(fmt.Errorf("subscribe to %q: %w", topic.GetName(), err))
		}
		return nil
	case err := <-recvDone:
		// The host closed (or lost) the stream: stop the subscription and
		// nack every message still awaiting its ack.
		cancel()
		sub.close()
		select {
		case serr := <-subDone:
			if serr != nil && !errors.Is(serr, context.Canceled) {
				log.Warn("subscription ended with an error", "err", serr)
			}
		case <-time.After(subscribeStopTimeout):
			log.Error("Subscribe did not return after its context ended", "waited", subscribeStopTimeout)
		}
		log.Debug("subscription stream closed", "err", err)
		if err != nil && status.Code(err) != codes.Canceled {
			return err
		}
		return nil
	}
}

// subscription is the state of one PullMessages stream.
type subscription struct {
	stream componentsv1.PubSub_PullMessagesServer
	topic  string
	slots  chan struct{} // bounded in-flight messages
	log    *slog.Logger

	sendMu sync.Mutex // stream.Send is not safe for concurrent use

	mu      sync.Mutex
	pending map[string]chan error // wire id → ack result
	seq     uint64
	done    chan struct{} // closed when the stream ends
	closed  bool
}

func (sub *subscription) close() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.closed {
		sub.closed = true
		close(sub.done)
	}
}

// track registers a message awaiting its ack under a wire id unique among
// the pending ones (the broker's id when it is).
func (sub *subscription) track(brokerID string) (string, chan error, error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return "", nil, errStreamClosed
	}
	id := brokerID
	if _, busy := sub.pending[id]; id == "" || busy {
		sub.seq++
		id = brokerID + "#" + strconv.FormatUint(sub.seq, 10)
	}
	ch := make(chan error, 1)
	sub.pending[id] = ch
	return id, ch, nil
}

// untrack forgets id unless it was already acked and reused by another message.
func (sub *subscription) untrack(id string, ch chan error) {
	sub.mu.Lock()
	if sub.pending[id] == ch {
		delete(sub.pending, id)
	}
	sub.mu.Unlock()
}

// handle is the MessageHandler given to the plugin's Subscribe.
func (sub *subscription) handle(ctx context.Context, m *Message) error {
	if m == nil {
		return errors.New("nil message")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case sub.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.done:
		return errStreamClosed
	}
	defer func() { <-sub.slots }()

	id, ack, err := sub.track(m.ID)
	if err != nil {
		return err
	}
	defer sub.untrack(id, ack)
	topic := m.Topic
	if topic == "" {
		topic = sub.topic
	}
	sub.sendMu.Lock()
	err = sub.stream.Send(&componentsv1.PullMessagesResponse{
		Data:        m.Data,
		TopicName:   topic,
		Metadata:    m.Metadata,
		ContentType: m.ContentType,
		Id:          id,
	})
	sub.sendMu.Unlock()
	if err != nil {
		return fmt.Errorf("sending message %s to the subscriber: %w", id, err)
	}
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.done:
		return errStreamClosed
	}
}

// recvAcks reads acks until the stream ends; it returns nil on a clean EOF.
func (sub *subscription) recvAcks() error {
	for {
		req, err := sub.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		id := req.GetAckMessageId()
		if id == "" {
			if req.GetTopic() != nil {
				sub.log.Warn("ignoring a second topic on a subscription stream", "topic2", req.GetTopic().GetName())
			}
			continue
		}
		var result error
		if ae := req.GetAckError(); ae != nil {
			result = fmt.Errorf("%w: %s", errNacked, ae.GetMessage())
		}
		sub.mu.Lock()
		ch, ok := sub.pending[id]
		delete(sub.pending, id)
		sub.mu.Unlock()
		if !ok {
			sub.log.Warn("ack for an unknown or already acknowledged message", "id", id)
			continue
		}
		ch <- result // buffered, one result per id
	}
}
