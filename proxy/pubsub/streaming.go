package pubsub

import (
	"context"
	"errors"

	"io"
	"sync"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/resources"
)

// streamDrainTimeout bounds how long a closed streaming subscription waits
// for its in-flight deliveries (which fail fast once the client is gone).
const streamDrainTimeout = 5 * time.Second

// SubscribeTopicEventsAlpha1 serves a streaming subscription (the Go SDK's
// client.Subscribe): the first request names pubsub and topic, the answer
// starts with an initial response, then every event is sent as a
// TopicEventRequest and acked by the client with its id and status.
func (a *API) SubscribeTopicEventsAlpha1(stream runtimev1.Dapr_SubscribeTopicEventsAlpha1Server) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	init := first.GetInitialRequest()
	if init == nil {
		return status.Error(codes.InvalidArgument, "initial request is required")
	}
	b, err := a.resolve(init.GetPubsubName(), init.GetTopic())
	if err != nil {
		return errs.GRPC(err)
	}
	if !scopesOf(b.Properties, a.appID).canSubscribe(init.GetTopic()) {
		return errs.GRPC(errs.PubsubForbidden.New(init.GetTopic(), a.appID))
	}
	sub, err := newSubscription(runtimev1.PubsubSubscriptionType_STREAMING, "streaming subscription",
		init.GetPubsubName(), init.GetTopic(), cloneMap(init.GetMetadata()), []resources.Rule{{Path: "/"}},
		init.GetDeadLetterTopic(), resources.BulkSubscribe{})
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	sc := &streamConn{stream: stream, pending: map[string]chan runtimev1.TopicEventResponse_TopicEventResponseStatus{}}
	c := a.newConsumer(sub, b, sc)

	key := sub.key()
	a.mu.Lock()
	switch {
	case a.stopping:
		a.mu.Unlock()
		return status.Error(codes.Unavailable, "the sidecar is shutting down")
	case a.streaming[key] != nil:
		a.mu.Unlock()
		return status.Errorf(codes.AlreadyExists, "already subscribed to pubsub %q topic %q", sub.pubsub, sub.topic)
	}
	a.streaming[key] = sub
	a.streamConsumers[key] = c
	a.wg.Add(1)
	a.mu.Unlock()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), streamDrainTimeout)
		c.stop(ctx)
		cancel()
		a.mu.Lock()
		delete(a.streaming, key)
		delete(a.streamConsumers, key)
		a.mu.Unlock()
		a.wg.Done()
		a.log.Info("streaming subscription ended", "pubsub", sub.pubsub, "topic", sub.topic)
	}()

	var sendErr error
	c.start(func() {
		sendErr = sc.send(&runtimev1.SubscribeTopicEventsResponseAlpha1{
			SubscribeTopicEventsResponseType: &runtimev1.SubscribeTopicEventsResponseAlpha1_InitialResponse{
				InitialResponse: &runtimev1.SubscribeTopicEventsResponseInitialAlpha1{},
			},
		})
	})
	if sendErr != nil {
		return sendErr
	}
	a.log.Info("streaming subscription started", "pubsub", sub.pubsub, "topic", sub.topic)

	recvErr := make(chan error, 1)
	go func() { recvErr <- sc.receive() }()
	select {
	case err := <-recvErr:
		sc.close()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	case <-a.runCtx.Done():
		sc.close()
		return status.Error(codes.Unavailable, "the sidecar is shutting down")
	}
}

// streamConn is a streaming subscriber as a deliverer.
type streamConn struct {
	stream runtimev1.Dapr_SubscribeTopicEventsAlpha1Server
	sendMu sync.Mutex

	mu      sync.Mutex
	closed  bool
	pending map[string]chan runtimev1.TopicEventResponse_TopicEventResponseStatus
}

func (s *streamConn) send(m *runtimev1.SubscribeTopicEventsResponseAlpha1) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

// receive dispatches the client's acks until the stream ends.
func (s *streamConn) receive() error {
	for {
		req, err := s.stream.Recv()
		if err != nil {
			return err
		}
		p := req.GetEventProcessed()
		if p == nil {
			return status.Error(codes.InvalidArgument, "duplicate initial request received")
		}
		s.mu.Lock()
		ch := s.pending[p.GetId()]
		delete(s.pending, p.GetId())
		s.mu.Unlock()
		if ch != nil {
			ch <- p.GetStatus().GetStatus()
		}
	}
}

func (s *streamConn) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *streamConn) deliver(ctx context.Context, d *delivery) (outcome, error) {
	ev, err := topicEvent(d)
	if err != nil {
		return 0, err
	}
	ch := make(chan runtimev1.TopicEventResponse_TopicEventResponseStatus, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, retriable("streaming subscriber is gone")
	}
	if _, dup := s.pending[ev.GetId()]; dup {
		s.mu.Unlock()
		return 0, retriable("event %s is already in flight to the streaming subscriber", ev.GetId())
	}
	s.pending[ev.GetId()] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.pending[ev.GetId()] == ch {
			delete(s.pending, ev.GetId())
		}
		s.mu.Unlock()
	}()
	if err := s.send(&runtimev1.SubscribeTopicEventsResponseAlpha1{
		SubscribeTopicEventsResponseType: &runtimev1.SubscribeTopicEventsResponseAlpha1_EventMessage{EventMessage: ev},
	}); err != nil {
		return 0, retriable("send to streaming subscriber: %w", err)
	}
	select {
	case st := <-ch:
		return topicStatus(st)
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.stream.Context().Done():
		return 0, retriable("streaming subscriber is gone")
	}
}

func (s *streamConn) deliverBulk(ctx context.Context, b *bulkDelivery) (map[string]outcome, error) {
	return perEntry(ctx, s, b)
}
