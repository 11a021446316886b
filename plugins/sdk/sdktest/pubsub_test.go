package sdktest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// memBus is an in-memory broker shared by every instance of one test: per
// topic and consumer group a queue; a nacked or abandoned message goes back
// to its queue. The defects break one promise each.
type memBus struct {
	mu     sync.Mutex
	seq    int
	topics map[string]map[string]chan memMsg // topic → group → queue

	dropNacked   bool // a nack loses the message
	sharedGroups bool // every consumer group reads one queue (no fan-out)
}

type memMsg struct {
	id      string
	data    []byte
	ct      string
	expires time.Time
}

func newBus() *memBus { return &memBus{topics: map[string]map[string]chan memMsg{}} }

// queue returns the group's queue, creating it (and the topic) on first use.
func (b *memBus) queue(topic, group string) chan memMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sharedGroups {
		group = "all"
	}
	g := b.topics[topic]
	if g == nil {
		g = map[string]chan memMsg{}
		b.topics[topic] = g
	}
	q := g[group]
	if q == nil {
		q = make(chan memMsg, 1024)
		g[group] = q
	}
	return q
}

type memPubSub struct {
	bus   *memBus
	group string
}

func (p *memPubSub) MessageTTL() {}

func (p *memPubSub) Init(_ context.Context, md sdk.Metadata) error {
	p.group = md[sdk.ConsumerIDKey]
	if p.group == "" {
		return errors.New("consumerID is required")
	}
	return nil
}

func (p *memPubSub) Publish(_ context.Context, r *sdk.PublishRequest) error {
	ttl, ok, err := sdk.ParseTTL(r.Metadata)
	if err != nil {
		return err
	}
	p.bus.mu.Lock()
	p.bus.seq++
	m := memMsg{id: strconv.Itoa(p.bus.seq), data: r.Data, ct: r.ContentType}
	if ok {
		m.expires = time.Now().Add(ttl)
	}
	var queues []chan memMsg
	for _, q := range p.bus.topics[r.Topic] {
		queues = append(queues, q)
	}
	p.bus.mu.Unlock()
	for _, q := range queues {
		q <- m
	}
	return nil
}

func (p *memPubSub) Subscribe(ctx context.Context, r sdk.SubscribeRequest, h sdk.MessageHandler) error {
	q := p.bus.queue(r.Topic, p.group)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-q:
			if !m.expires.IsZero() && time.Now().After(m.expires) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := h(ctx, &sdk.Message{ID: m.id, Topic: r.Topic, Data: m.data, ContentType: m.ct})
				if err != nil && !p.bus.dropNacked {
					q <- m
				}
			}()
		}
	}
}

var brokenBuses = map[string]struct {
	bus      func() *memBus
	wantFail string
}{
	"drops nacked":  {func() *memBus { b := newBus(); b.dropNacked = true; return b }, "--- FAIL: TestBrokenBusHelper/redelivery_on_nack"},
	"shared groups": {func() *memBus { b := newBus(); b.sharedGroups = true; return b }, "--- FAIL: TestBrokenBusHelper/fan-out_to_two_groups"},
}

const brokenBusEnv = "SDKTEST_BROKEN_BUS"

func TestCorrectBrokerPasses(t *testing.T) {
	bus := newBus()
	sdktest.ExercisePubSub(t, func() sdk.PubSub { return &memPubSub{bus: bus} }, nil, sdktest.RedeliveryWithin(2*time.Second))
}

// TestBrokenBusHelper runs the kit on one broken broker; it only does
// anything when TestKitCatchesBrokenBrokers starts it in a child process.
func TestBrokenBusHelper(t *testing.T) {
	name := os.Getenv(brokenBusEnv)
	if name == "" {
		t.Skip("helper: runs only as a child of TestKitCatchesBrokenBrokers")
	}
	bus := brokenBuses[name].bus()
	sdktest.ExercisePubSub(t, func() sdk.PubSub { return &memPubSub{bus: bus} }, nil,
		sdktest.RedeliveryWithin(time.Second), sdktest.ReadyWithin(2*time.Second))
}

func TestKitCatchesBrokenBrokers(t *testing.T) {
	for name, bb := range brokenBuses {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBusHelper$", "-test.v")
			cmd.Env = append(os.Environ(), brokenBusEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("conformance passed a broken broker (%s):\n%s", name, out)
			}
			if !strings.Contains(string(out), bb.wantFail) {
				t.Fatalf("want %q in the output:\n%s", bb.wantFail, out)
			}
		})
	}
}
