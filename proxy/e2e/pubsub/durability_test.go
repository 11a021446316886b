package pubsube2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// TestAppKilledMidStream: the subscribing app is SIGKILLed while events
// are flowing and started again on the same port; every event reaches it
// (each id written to a file before the app acknowledges it), none lost.
func TestAppKilledMidStream(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			const total = 300
			topic := e2etest.Uniq("kill-app-")
			cleanupTopics(t, topic)
			subID := e2etest.Uniq("killed-")
			res := resources(t, b.yaml(t, nil), subscriptionYAML("s", topic, "/events", nil, "", nil, subID))
			ids := filepath.Join(t.TempDir(), "ids")
			port := e2etest.FreePort(t)
			// 50 ms per event: many deliveries are in flight when it dies.
			child := startChildApp(t, port, "/events", ids, 50*time.Millisecond)
			sub := startSidecar(t, sidecarOpts{appID: subID, appPort: port, resources: res})
			waitSubscribed(t, sub, topic)
			pub := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("pub-"), resources: res})
			// Publish while the app runs, dies and comes back.
			published := publishAsync(pub, topic, total)
			e2etest.WaitFor(t, 30*time.Second, "the app to process 50 events", func() bool { return len(readIDs(t, ids)) >= 50 })
			child.Kill()
			atKill := len(readIDs(t, ids))
			if atKill >= total {
				t.Fatalf("the app had all %d events before it was killed: not mid-stream", total)
			}
			// Down for a while: deliveries fail, are retried, go back to the broker.
			time.Sleep(500 * time.Millisecond)
			startChildApp(t, port, "/events", ids, 0)
			if err := <-published; err != nil {
				t.Fatal(err)
			}
			e2etest.WaitFor(t, 60*time.Second, fmt.Sprintf("all %d events after the restart", total), func() bool {
				return len(readIDs(t, ids)) >= total
			})
			got := readIDs(t, ids)
			dups := 0
			for i := range total {
				n := got[strconv.Itoa(i)]
				if n == 0 {
					t.Errorf("event %d lost", i)
				}
				dups += max(n-1, 0)
			}
			if len(got) != total {
				t.Errorf("the app got %d distinct ids, want %d: %v", len(got), total, got)
			}
			t.Logf("killed after %d of %d events; %d redelivered twice (at-least-once)", atKill, total, dups)
			if sub.Exited() {
				t.Errorf("the sidecar exited when its app died: %v", sub.Err())
			}
		})
	}
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// publishAsync publishes {"n":0}…{"n":total-1} to topic in the background,
// one at a time; the channel gets nil when all are published, or the first
// error.
func publishAsync(pub *sidecar, topic string, total int) <-chan error {
	published := make(chan error, 1)
	go func() {
		for i := range total {
			r, err := tryDo(http.MethodPost, pub.URL("/v1.0/publish/pubsub/"+topic), jsonHeader, []byte(fmt.Sprintf(`{"n":%d}`, i)), 10*time.Second)
			if err == nil && r.status != http.StatusNoContent {
				err = fmt.Errorf("publish %d: %d %s", i, r.status, r.body)
			}
			if err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	return published
}

// TestSidecarRestartResumes: a subscriber sidecar is stopped, events are
// published meanwhile, and a new sidecar of the same app id picks up from
// its consumer group's committed position: the new events arrive, the ones
// acknowledged before the restart do not come again.
func TestSidecarRestartResumes(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			const before, during = 20, 20
			topic := e2etest.Uniq("resume-")
			cleanupTopics(t, topic)
			res := resources(t, b.yaml(t, nil))
			a := startApp(t, []map[string]any{{"pubsubname": "pubsub", "topic": topic, "route": "/events"}}, nil)
			subID := e2etest.Uniq("resumer-")
			sub := startSidecar(t, sidecarOpts{appID: subID, appPort: a.port, resources: res})
			waitSubscribed(t, sub, topic)
			pub := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("pub-"), resources: res})

			publishN(t, pub, topic, 0, before)
			a.waitCount(t, "/events", before, 20*time.Second)
			sub.Stop()
			if sub.Err() != nil {
				t.Errorf("subscriber sidecar did not stop cleanly: %v", sub.Err())
			}
			publishN(t, pub, topic, before, during)

			sub2 := startSidecar(t, sidecarOpts{appID: subID, appPort: a.port, resources: res})
			waitSubscribed(t, sub2, topic)
			a.waitCount(t, "/events", before+during, 30*time.Second)
			// Anything replayed would come right after the subscription
			// starts, with the events published meanwhile; give stragglers
			// one second.
			time.Sleep(time.Second)
			got := a.dataIDs("/events")
			for i := range before + during {
				n := got[strconv.Itoa(i)]
				switch {
				case n == 0:
					t.Errorf("event %d lost", i)
				case n > 1 && i < before:
					t.Errorf("event %d, acknowledged before the restart, delivered %d times (replayed)", i, n)
				case n > 1:
					t.Errorf("event %d delivered %d times across a clean restart", i, n)
				}
			}
		})
	}
}

// TestCompetingConsumersAndFanOut: two instances of one app (same app id,
// so the same consumer group) share a topic's events between them; a
// second app gets every event.
func TestCompetingConsumersAndFanOut(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			const total = 200
			topic := e2etest.Uniq("share-")
			cleanupTopics(t, topic)
			res := resources(t, b.yaml(t, nil))
			subs := []map[string]any{{"pubsubname": "pubsub", "topic": topic, "route": "/events"}}
			slow := func(delivery, int) answer { time.Sleep(5 * time.Millisecond); return success }
			workerID, auditID := e2etest.Uniq("worker-"), e2etest.Uniq("audit-")
			w1, w2, audit := startApp(t, subs, slow), startApp(t, subs, slow), startApp(t, subs, nil)
			for _, s := range []*sidecar{
				startSidecar(t, sidecarOpts{appID: workerID, appPort: w1.port, resources: res}),
				startSidecar(t, sidecarOpts{appID: workerID, appPort: w2.port, resources: res}),
				startSidecar(t, sidecarOpts{appID: auditID, appPort: audit.port, resources: res}),
			} {
				waitSubscribed(t, s, topic)
			}
			pub := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("pub-"), resources: res})
			publishN(t, pub, topic, 0, total)

			audit.waitCount(t, "/events", total, 30*time.Second)
			e2etest.WaitFor(t, 30*time.Second, "the workers to share every event", func() bool {
				return len(union(w1.dataIDs("/events"), w2.dataIDs("/events"))) >= total
			})
			g1, g2 := w1.dataIDs("/events"), w2.dataIDs("/events")
			t.Logf("instance 1 got %d, instance 2 got %d of %d", len(g1), len(g2), total)
			if len(g1) == 0 || len(g2) == 0 {
				t.Errorf("one instance got nothing (%d / %d): the load is not split", len(g1), len(g2))
			}
			for id := range g1 {
				if g2[id] > 0 {
					t.Errorf("event %s went to both instances of one app", id)
				}
			}
			if n := len(audit.dataIDs("/events")); n != total {
				t.Errorf("the other app got %d distinct events, want all %d", n, total)
			}
		})
	}
}

func union(ms ...map[string]int) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// TestSidecarKilledResumes: a subscriber sidecar is SIGKILLed mid-stream
// and started again; every event arrives, and events the app had answered
// well (1 s) before the kill do not come again: their acknowledgements
// were committed, so there is no replay from the start.
func TestSidecarKilledResumes(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			const total = 200
			topic := e2etest.Uniq("sidecar-kill-")
			cleanupTopics(t, topic)
			res := resources(t, b.yaml(t, nil))
			// One event at a time, 10 ms each: the stream lasts about 2 s.
			var serial sync.Mutex
			slow := func(delivery, int) answer {
				serial.Lock()
				defer serial.Unlock()
				time.Sleep(10 * time.Millisecond)
				return success
			}
			a := startApp(t, []map[string]any{{"pubsubname": "pubsub", "topic": topic, "route": "/events"}}, slow)
			subID := e2etest.Uniq("victim-")
			sub := startSidecar(t, sidecarOpts{appID: subID, appPort: a.port, resources: res})
			waitSubscribed(t, sub, topic)
			pub := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("pub-"), resources: res})
			published := publishAsync(pub, topic, total)
			e2etest.WaitFor(t, 20*time.Second, "120 answered events", func() bool { return len(a.answeredBefore(time.Now())) >= 120 })
			sub.Kill()
			settled := a.answeredBefore(time.Now().Add(-time.Second))
			atKill := len(a.answeredBefore(time.Now()))
			if atKill >= total {
				t.Fatalf("all %d events were answered before the kill: not mid-stream", total)
			}
			sub2 := startSidecar(t, sidecarOpts{appID: subID, appPort: a.port, resources: res})
			waitSubscribed(t, sub2, topic)
			if err := <-published; err != nil {
				t.Fatal(err)
			}
			// Leases of the dead sidecar come back after the visibility /
			// processing timeout (5 s).
			a.waitCount(t, "/events", total, 45*time.Second)
			got := a.dataIDs("/events")
			dups := 0
			for i := range total {
				if n := got[strconv.Itoa(i)]; n == 0 {
					t.Errorf("event %d lost", i)
				} else {
					dups += n - 1
				}
			}
			t.Logf("killed after %d of %d events answered (%d over 1 s before); %d delivered again", atKill, total, len(settled), dups)
			if len(settled) == 0 {
				t.Fatal("no event was answered over 1 s before the kill: the test proves nothing")
			}
			for _, id := range settled {
				if got[id] > 1 {
					t.Errorf("event %s, answered over 1 s before the kill, delivered %d times (replayed)", id, got[id])
				}
			}
		})
	}
}

// TestShutdownDrainsInFlight: an event the app is still handling when its
// sidecar gets SIGTERM is finished and acknowledged during the graceful
// shutdown, so the next sidecar of the app does not deliver it again.
func TestShutdownDrainsInFlight(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			topic := e2etest.Uniq("drain-")
			cleanupTopics(t, topic)
			res := resources(t, b.yaml(t, nil))
			handling := make(chan struct{}, 1)
			slow := func(d delivery, nth int) answer {
				select {
				case handling <- struct{}{}:
				default:
				}
				time.Sleep(time.Second)
				return success
			}
			a := startApp(t, []map[string]any{{"pubsubname": "pubsub", "topic": topic, "route": "/events"}}, slow)
			subID := e2etest.Uniq("drainer-")
			sub := startSidecar(t, sidecarOpts{appID: subID, appPort: a.port, resources: res})
			waitSubscribed(t, sub, topic)
			pub := startSidecar(t, sidecarOpts{appID: e2etest.Uniq("pub-"), resources: res})
			publishN(t, pub, topic, 0, 1)
			select {
			case <-handling:
			case <-time.After(15 * time.Second):
				t.Fatal("the event was not delivered")
			}
			sub.Stop() // SIGTERM while the app handles the event (grace 5 s)
			if sub.Err() != nil {
				t.Errorf("sidecar exit: %v", sub.Err())
			}
			sub2 := startSidecar(t, sidecarOpts{appID: subID, appPort: a.port, resources: res})
			waitSubscribed(t, sub2, topic)
			// A lease or pending entry not acknowledged would come back
			// within the 5 s visibility / processing timeout (+1 s reclaim).
			time.Sleep(7 * time.Second)
			if n := a.dataIDs("/events")["0"]; n != 1 {
				t.Errorf("the event in flight at SIGTERM was delivered %d times, want 1 (finished and acknowledged while draining)", n)
			}
		})
	}
}
