package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Environment of the child process TestChildHelper runs as.
const (
	childModeEnv  = "PUBSUB_SQLITE_CHILD"
	childDBEnv    = "PUBSUB_SQLITE_DB"
	childTopicEnv = "PUBSUB_SQLITE_TOPIC"
)

func newBroker(t *testing.T, md sdk.Metadata) *Broker {
	t.Helper()
	b := New().(*Broker)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Init(ctx, md); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// subscribe runs Subscribe until the test ends, passing messages to h.
func subscribe(t *testing.T, b *Broker, topic string, h sdk.MessageHandler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Subscribe(ctx, sdk.SubscribeRequest{Topic: topic}, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Subscribe: %v", err)
		}
	})
}

func publish(t *testing.T, b *Broker, topic, data string) {
	t.Helper()
	if err := b.Publish(context.Background(), &sdk.PublishRequest{Topic: topic, Data: []byte(data)}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// TestChildHelper is another process sharing the database file; it only
// runs when a test below starts it.
func TestChildHelper(t *testing.T) {
	mode := os.Getenv(childModeEnv)
	if mode == "" {
		t.Skip("helper: runs only as a child process of the cross-process tests")
	}
	db, topic := os.Getenv(childDBEnv), os.Getenv(childTopicEnv)
	b := New().(*Broker)
	if err := b.Init(context.Background(), sdk.Metadata{"connectionString": db, "consumerID": "shared"}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	switch mode {
	case "publish": // 100 messages carrying their publish time, 5 ms apart
		for range 100 {
			publish(t, b, topic, strconv.FormatInt(time.Now().UnixNano(), 10))
			time.Sleep(5 * time.Millisecond)
		}
	case "consume": // print every message; stop when stdin closes
		var mu sync.Mutex
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); cancel() }()
		_ = b.Subscribe(ctx, sdk.SubscribeRequest{Topic: topic}, func(_ context.Context, m *sdk.Message) error {
			mu.Lock()
			defer mu.Unlock()
			fmt.Printf("got %s\n", m.Data)
			return nil
		})
	}
}

func startChild(t *testing.T, mode, db, topic string) (*exec.Cmd, *bufio.Scanner, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildHelper$")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childDBEnv+"="+db, childTopicEnv+"="+topic)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { _ = stdin.Close(); _ = cmd.Wait() }
	t.Cleanup(stop)
	return cmd, bufio.NewScanner(stdout), stop
}

// TestCrossProcessLatency: a message published by another process reaches
// a subscriber here with p50 under 20 ms.
func TestCrossProcessLatency(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	b := newBroker(t, sdk.Metadata{"connectionString": db, "consumerID": "latency"})
	topic := "latency"
	var (
		mu   sync.Mutex
		lats []time.Duration
	)
	got := make(chan struct{}, 1000)
	// Create the group before the child publishes (initialOffset only
	// matters for a group's first subscription).
	if err := b.ensureGroup(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	subscribe(t, b, topic, func(_ context.Context, m *sdk.Message) error {
		ns, err := strconv.ParseInt(string(m.Data), 10, 64)
		if err != nil {
			return err
		}
		mu.Lock()
		lats = append(lats, time.Since(time.Unix(0, ns)))
		mu.Unlock()
		got <- struct{}{}
		return nil
	})
	_, _, stop := startChild(t, "publish", db, topic)
	defer stop()
	for i := range 100 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of 100 messages published by another process", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lats)
	p50, p99 := lats[len(lats)/2], lats[len(lats)*99/100]
	t.Logf("cross-process delivery latency p50=%v p99=%v", p50, p99)
	if p50 > 20*time.Millisecond && !raceEnabled {
		t.Fatalf("p50 delivery latency %v, want under 20ms", p50)
	}
}

// TestCrossProcessCompeting: consumers of one group in two processes split
// the messages, none delivered to both.
func TestCrossProcessCompeting(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	b := newBroker(t, sdk.Metadata{"connectionString": db, "consumerID": "shared"})
	topic := "compete"
	var (
		mu   sync.Mutex
		seen = map[string]string{}
	)
	record := func(who, data string) error {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := seen[data]; dup {
			return fmt.Errorf("%q delivered to %s and again to %s", data, prev, who)
		}
		seen[data] = who
		return nil
	}
	var dupErr error
	subscribe(t, b, topic, func(_ context.Context, m *sdk.Message) error {
		if err := record("parent", string(m.Data)); err != nil {
			mu.Lock()
			dupErr = err
			mu.Unlock()
		}
		return nil
	})
	_, out, stop := startChild(t, "consume", db, topic)
	childGot := make(chan string, 1000)
	go func() {
		for out.Scan() {
			if d, ok := strings.CutPrefix(out.Text(), "got "); ok {
				childGot <- d
			}
		}
		close(childGot)
	}()
	// Warm up until the child consumes: probes until one reaches it.
	deadline := time.Now().Add(10 * time.Second)
	for ready := false; !ready; {
		if time.Now().After(deadline) {
			t.Fatal("the child process consumed nothing within 10s")
		}
		publish(t, b, topic, "probe-"+strconv.FormatInt(time.Now().UnixNano(), 10))
		select {
		case d := <-childGot:
			_ = record("child", d)
			ready = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	const n = 100
	for i := range n {
		publish(t, b, topic, "m-"+strconv.Itoa(i))
		time.Sleep(time.Millisecond)
	}
	count := func() (parent, child, total int) {
		mu.Lock()
		defer mu.Unlock()
		for d, who := range seen {
			if strings.HasPrefix(d, "m-") {
				total++
				if who == "child" {
					child++
				} else {
					parent++
				}
			}
		}
		return
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, _, total := count(); total == n {
			break
		}
		if time.Now().After(deadline) {
			_, _, total := count()
			t.Fatalf("received %d of %d messages", total, n)
		}
		select {
		case d, ok := <-childGot:
			if !ok {
				t.Fatal("child process ended")
			}
			if err := record("child", d); err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	parent, child, _ := count()
	mu.Lock()
	err := dupErr
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("split: parent %d, child %d", parent, child)
	if parent == 0 || child == 0 {
		t.Fatalf("competing consumers did not split the load: parent %d, child %d", parent, child)
	}
}

// TestVisibilityTimeout: a message whose handler never returns (a hung or
// dead consumer) is handed out again — to either consumer of the group —
// after visibilityTimeout, not before.
func TestVisibilityTimeout(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	md := sdk.Metadata{"connectionString": db, "consumerID": "g", "visibilityTimeout": "1s"}
	hung, other := newBroker(t, md), newBroker(t, md)
	topic := "visibility"
	release := make(chan struct{})
	defer close(release)
	deliveries := make(chan time.Time, 16)
	note := func() {
		select {
		case deliveries <- time.Now():
		default:
		}
	}
	subscribe(t, hung, topic, func(ctx context.Context, _ *sdk.Message) error {
		note()
		select { // hangs until the test ends
		case <-release:
		case <-ctx.Done():
		}
		return errors.New("never acked")
	})
	publish(t, hung, topic, "m")
	var t0 time.Time
	select {
	case t0 = <-deliveries:
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered")
	}
	subscribe(t, other, topic, func(context.Context, *sdk.Message) error { note(); return nil })
	select {
	case t1 := <-deliveries:
		if d := t1.Sub(t0); d < 900*time.Millisecond {
			t.Fatalf("delivered again after %v, before the 1s visibility timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered again after the visibility timeout")
	}
}

// TestNackBackoff: the first nack redelivers at once, later ones back off.
func TestNackBackoff(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	b := newBroker(t, sdk.Metadata{"connectionString": db, "consumerID": "g"})
	times := make(chan time.Time, 16)
	subscribe(t, b, "nacks", func(context.Context, *sdk.Message) error {
		times <- time.Now()
		return errors.New("refused")
	})
	publish(t, b, "nacks", "poison")
	var at []time.Time
	for len(at) < 4 {
		select {
		case tm := <-times:
			at = append(at, tm)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d deliveries of a nacked message", len(at))
		}
	}
	gaps := []time.Duration{at[1].Sub(at[0]), at[2].Sub(at[1]), at[3].Sub(at[2])}
	t.Logf("gaps between deliveries: %v", gaps)
	if gaps[0] > 80*time.Millisecond && !raceEnabled {
		t.Errorf("first redelivery after %v, want at once", gaps[0])
	}
	if gaps[1] < 90*time.Millisecond || gaps[2] < 190*time.Millisecond {
		t.Errorf("repeated nacks did not back off: gaps %v, want >= 100ms then >= 200ms", gaps)
	}
}

// TestRetention: messages older than retentionPeriod are swept and not
// delivered to a group that starts at the oldest message.
func TestRetention(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	b := newBroker(t, sdk.Metadata{"connectionString": db, "consumerID": "late", "retentionPeriod": "1s"})
	topic := "retention"
	publish(t, b, topic, "old")
	time.Sleep(1100 * time.Millisecond) // the message must age past retention
	if err := b.sweep(); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	publish(t, b, topic, "new")
	got := make(chan string, 2)
	subscribe(t, b, topic, func(_ context.Context, m *sdk.Message) error { got <- string(m.Data); return nil })
	select {
	case d := <-got:
		if d != "new" {
			t.Fatalf("first message %q, want the retired one skipped", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
	}
}

// TestInitialOffsetNewest: a new group with initialOffset newest skips the
// existing log.
func TestInitialOffsetNewest(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	b := newBroker(t, sdk.Metadata{"connectionString": db, "consumerID": "fresh", "initialOffset": "newest"})
	topic := "offsets"
	publish(t, b, topic, "before")
	got := make(chan string, 2)
	subscribe(t, b, topic, func(_ context.Context, m *sdk.Message) error { got <- string(m.Data); return nil })
	deadline := time.Now().Add(5 * time.Second)
	for {
		publish(t, b, topic, "after")
		select {
		case d := <-got:
			if d != "after" {
				t.Fatalf("got %q, want only messages published after the group was created", d)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing delivered")
		}
	}
}

// TestIdleCPU: an idle subscription costs (almost) no CPU.
func TestIdleCPU(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	b := newBroker(t, sdk.Metadata{"connectionString": db, "consumerID": "idle"})
	for i := range 5 {
		subscribe(t, b, "idle-"+strconv.Itoa(i), func(context.Context, *sdk.Message) error { return nil })
	}
	time.Sleep(200 * time.Millisecond) // let the subscriptions settle
	before := cpuTime(t)
	const window = 2 * time.Second
	time.Sleep(window)
	used := cpuTime(t) - before
	t.Logf("CPU while idle with 5 subscriptions: %v over %v (%.1f%% of a core)", used, window, 100*used.Seconds()/window.Seconds())
	if used > window/20 && !raceEnabled {
		t.Fatalf("idle subscriptions used %v of CPU in %v, want under 5%% of a core", used, window)
	}
}

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestInitErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pubsub.db")
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]sdk.Metadata{
		"no connectionString": {"consumerID": "g"},
		"no consumerID":       {"connectionString": db},
		"bad prefix":          {"connectionString": db, "consumerID": "g", "tablePrefix": "x; DROP"},
		"bad offset":          {"connectionString": db, "consumerID": "g", "initialOffset": "middle"},
		"bad duration":        {"connectionString": db, "consumerID": "g", "visibilityTimeout": "soon"},
		"zero visibility":     {"connectionString": db, "consumerID": "g", "visibilityTimeout": "0"},
		"bad maxInFlight":     {"connectionString": db, "consumerID": "g", "maxInFlight": "100000"},
		"bad WAL flag":        {"connectionString": db, "consumerID": "g", "disableWAL": "maybe"},
		"unopenable file":     {"connectionString": filepath.Join(notDir, "x.db"), "consumerID": "g"},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			b := New()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Init(ctx, md); err == nil {
				_ = b.(sdk.Closer).Close()
				t.Fatalf("Init(%v) succeeded, want an error", md)
			}
			if err := b.(sdk.Closer).Close(); err != nil {
				t.Fatalf("Close after a failed Init: %v", err)
			}
		})
	}
}
