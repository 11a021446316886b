package pubsub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// memBroker is an in-memory stand-in for a pub/sub plugin process, served
// over loopback gRPC with the real componentsv1 PubSub service. It is honest
// about at-least-once: a nacked or unacked message (stream closed) goes back
// to its topic's queue and is delivered again. Publishing fails for topic
// "broken" and for any event containing "FAIL".
type memBroker struct {
	componentsv1.UnimplementedPubSubServer
	mu        sync.Mutex
	queues    map[string]chan *componentsv1.PullMessagesResponse
	published map[string][][]byte // topic → published data, in order
	publishMD map[string][]map[string]string
	acks      map[string]int // id → acks
	nacks     map[string]int // id → nacks
	bulkCalls int
	opened    chan string // topic of each PullMessages stream opened
}

func newMemBroker() *memBroker {
	return &memBroker{queues: map[string]chan *componentsv1.PullMessagesResponse{}, published: map[string][][]byte{},
		publishMD: map[string][]map[string]string{}, acks: map[string]int{}, nacks: map[string]int{}, opened: make(chan string, 64)}
}

func (b *memBroker) queue(topic string) chan *componentsv1.PullMessagesResponse {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.queues[topic]
	if !ok {
		q = make(chan *componentsv1.PullMessagesResponse, 4096)
		b.queues[topic] = q
	}
	return q
}

func (b *memBroker) put(topic string, data []byte, md map[string]string, ct string) error {
	if topic == "broken" || bytes.Contains(data, []byte("FAIL")) {
		return errors.New("broker refused the message")
	}
	b.mu.Lock()
	b.published[topic] = append(b.published[topic], data)
	b.publishMD[topic] = append(b.publishMD[topic], md)
	b.mu.Unlock()
	b.queue(topic) <- &componentsv1.PullMessagesResponse{Data: data, TopicName: topic, Metadata: md, ContentType: ct, Id: uuid.NewString()}
	return nil
}

func (b *memBroker) Publish(_ context.Context, req *componentsv1.PublishRequest) (*componentsv1.PublishResponse, error) {
	if err := b.put(req.GetTopic(), req.GetData(), req.GetMetadata(), req.GetContentType()); err != nil {
		return nil, err
	}
	return &componentsv1.PublishResponse{}, nil
}

func (b *memBroker) BulkPublish(_ context.Context, req *componentsv1.BulkPublishRequest) (*componentsv1.BulkPublishResponse, error) {
	b.mu.Lock()
	b.bulkCalls++
	b.mu.Unlock()
	resp := &componentsv1.BulkPublishResponse{}
	for _, e := range req.GetEntries() {
		if err := b.put(req.GetTopic(), e.GetEvent(), e.GetMetadata(), e.GetContentType()); err != nil {
			resp.FailedEntries = append(resp.FailedEntries, &componentsv1.BulkPublishResponseFailedEntry{EntryId: e.GetEntryId(), Error: err.Error()})
		}
	}
	return resp, nil
}

func (b *memBroker) PullMessages(stream componentsv1.PubSub_PullMessagesServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	topic := first.GetTopic().GetName()
	q := b.queue(topic)
	b.opened <- topic
	var mu sync.Mutex
	inflight := map[string]*componentsv1.PullMessagesResponse{}
	defer func() { // unacked messages are redelivered
		mu.Lock()
		for _, m := range inflight {
			q <- m
		}
		mu.Unlock()
	}()
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			id := req.GetAckMessageId()
			mu.Lock()
			m := inflight[id]
			delete(inflight, id)
			mu.Unlock()
			b.mu.Lock()
			if req.GetAckError() != nil {
				b.nacks[id]++
			} else {
				b.acks[id]++
			}
			b.mu.Unlock()
			if req.GetAckError() != nil && m != nil {
				q <- m
			}
		}
	}()
	for {
		select {
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-stream.Context().Done():
			return nil
		case m := <-q:
			mu.Lock()
			inflight[m.GetId()] = m
			mu.Unlock()
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
}

func (b *memBroker) publishedOn(topic string) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.published[topic]...)
}

func (b *memBroker) counts() (acks, nacks int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.acks {
		acks += n
	}
	for _, n := range b.nacks {
		nacks += n
	}
	return
}

// serve starts b on a loopback port and returns a client connection.
func (b *memBroker) serve(t *testing.T) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	componentsv1.RegisterPubSubServer(s, b)
	go func() { _ = s.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); s.Stop() })
	return conn
}

// testBrokers is a Brokers over fixed entries.
type testBrokers map[string]Broker

func (t testBrokers) Lookup(n string) (Broker, bool) { b, ok := t[n]; return b, ok }
func (t testBrokers) Names() []string {
	var out []string
	for n := range t {
		out = append(out, n)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
