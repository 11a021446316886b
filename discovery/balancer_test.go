package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// cluster3 starts three zero-config members of one app and waits until the
// first resolves all three.
func cluster3(t *testing.T, appID string, basePort int) (*Member, []string) {
	t.Helper()
	port := freePort(t)
	want := make([]string, 3)
	var first *Member
	for i := range want {
		m := zeroConf(t, appID, port, basePort+i)
		if first == nil {
			first = m
		}
		want[i] = fmt.Sprintf("127.0.0.1:%d", basePort+i)
	}
	waitFor(t, 5*time.Second, "three instances", sees(first, appID, want...))
	return first, want
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	t.Parallel()
	m, want := cluster3(t, "rr", 8001)
	b := NewBalancer(m)
	counts := map[string]int{}
	for range 30 {
		inst, done, err := b.Pick(context.Background(), "rr")
		if err != nil {
			t.Fatal(err)
		}
		counts[inst.Addr]++
		done(nil)
	}
	for _, a := range want {
		if counts[a] != 10 {
			t.Fatalf("round robin counts %v, want 10 each", counts)
		}
	}
	if _, _, err := b.Pick(context.Background(), "nobody"); !errors.Is(err, ErrNoInstances) {
		t.Fatalf("Pick(unknown) err = %v, want ErrNoInstances", err)
	}
}

func TestLeastOutstandingPrefersLessLoaded(t *testing.T) {
	t.Parallel()
	m, want := cluster3(t, "p2c", 8101)
	b := NewBalancer(m, WithStrategy(LeastOutstanding))
	ctx := context.Background()

	// Hold 5 open requests on each of two instances; the third stays idle.
	loaded := map[string]bool{want[0]: true, want[1]: true}
	var held []func(error)
	for len(held) < 10 {
		inst, done, err := b.Pick(ctx, "p2c")
		if err != nil {
			t.Fatal(err)
		}
		if !loaded[inst.Addr] {
			done(nil) // not one we are loading: release at once
			continue
		}
		if b.Outstanding(inst.Addr) > 5 {
			done(nil)
			continue
		}
		held = append(held, done)
	}
	if got := b.Outstanding(want[0]) + b.Outstanding(want[1]); got != 10 {
		t.Fatalf("outstanding on loaded instances = %d, want 10", got)
	}

	idle := 0
	const picks = 300
	for range picks {
		inst, done, err := b.Pick(ctx, "p2c")
		if err != nil {
			t.Fatal(err)
		}
		if inst.Addr == want[2] {
			idle++
		}
		done(nil)
	}
	// A pair contains the idle instance with probability 2/3; then it wins.
	// Round robin would give it 1/3. Demand well above that.
	if idle < picks*55/100 {
		t.Fatalf("idle instance got %d of %d picks, want > 55%%", idle, picks)
	}
	for _, d := range held {
		d(nil)
		d(nil) // second call is a no-op
	}
	for _, a := range want {
		if n := b.Outstanding(a); n != 0 {
			t.Fatalf("outstanding on %s = %d after all done, want 0", a, n)
		}
	}
}

func TestMarkFailedSkipsInstance(t *testing.T) {
	t.Parallel()
	m, want := cluster3(t, "mf", 8201)
	b := NewBalancer(m, WithFailureCooldown(300*time.Millisecond))
	ctx := context.Background()
	pickAll := func(n int) map[string]int {
		c := map[string]int{}
		for range n {
			inst, done, err := b.Pick(ctx, "mf")
			if err != nil {
				t.Fatal(err)
			}
			c[inst.Addr]++
			done(nil)
		}
		return c
	}

	b.MarkFailed(want[0])
	if c := pickAll(20); c[want[0]] != 0 || c[want[1]] != 10 || c[want[2]] != 10 {
		t.Fatalf("after MarkFailed(%s): %v", want[0], c)
	}

	// A refused connection reported through done marks the instance too.
	var refused *Instance
	for refused == nil {
		inst, done, err := b.Pick(ctx, "mf")
		if err != nil {
			t.Fatal(err)
		}
		if inst.Addr == want[1] {
			refused = &inst
			done(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
		} else {
			done(errors.New("application error")) // does not mark
		}
	}
	if c := pickAll(10); c[want[2]] != 10 {
		t.Fatalf("with two instances marked, picks went %v; want all to %s", c, want[2])
	}

	// All marked: every instance is a candidate again rather than an error.
	b.MarkFailed(want[2])
	if c := pickAll(30); len(c) != 3 {
		t.Fatalf("with all marked, picks went %v; want all three used", c)
	}

	// Marks expire.
	waitFor(t, 2*time.Second, "marks to expire", func() bool {
		b.MarkFailed("127.0.0.1:1") // unrelated mark; also prunes expired ones
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.failed) == 1
	})
	if c := pickAll(30); c[want[0]] != 10 || c[want[1]] != 10 || c[want[2]] != 10 {
		t.Fatalf("after cooldown: %v, want 10 each", c)
	}
}

func BenchmarkPick(b *testing.B) {
	ix := newIndex(testLogger())
	for i := range 5 {
		info := MemberInfo{Name: fmt.Sprintf("n%d", i), AppID: "bench", Addr: fmt.Sprintf("127.0.0.1:%d", 9000+i), State: StateAlive}
		ix.nodes[info.Name] = info
	}
	ix.publishLocked()
	for _, s := range []Strategy{RoundRobin, LeastOutstanding} {
		bal := NewBalancer(ix, WithStrategy(s))
		b.Run(fmt.Sprint("strategy=", s), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := bal.Pick(context.Background(), "bench")
					if err != nil {
						b.Fatal(err)
					}
					done(nil)
				}
			})
		})
	}
}
