package sdktest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// kvBinding is a correct output binding over a map.
type kvBinding struct {
	mu   sync.Mutex
	data map[string][]byte
	// defects
	noOps bool
}

func (b *kvBinding) Init(_ context.Context, md sdk.Metadata) error {
	if md["fail"] == "true" {
		return fmt.Errorf("metadata fail=true")
	}
	b.data = map[string][]byte{}
	return nil
}

func (b *kvBinding) Operations() []string {
	if b.noOps {
		return nil
	}
	return []string{sdk.OperationCreate, sdk.OperationGet}
}

func (b *kvBinding) Invoke(_ context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	key := req.Metadata["key"]
	if key == "" {
		return nil, fmt.Errorf("metadata key is required: %w", sdk.ErrBadRequest)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch req.Operation {
	case sdk.OperationCreate:
		b.data[key] = req.Data
		return nil, nil
	default:
		return &sdk.InvokeResponse{Data: b.data[key], Metadata: map[string]string{"key": key}}, nil
	}
}

var kvCase = sdktest.OutputBindingCase{
	Metadata:    sdk.Metadata{},
	BadMetadata: sdk.Metadata{"fail": "true"},
	Operations:  []string{"create", "get"},
	Calls: []sdktest.OutputCall{
		{Name: "create", Operation: "create", Data: []byte("v1"), Metadata: map[string]string{"key": "k"}},
		{Name: "get", Operation: "get", Metadata: map[string]string{"key": "k"}, WantData: []byte("v1"),
			Check: func(t *testing.T, r *sdk.InvokeResponse) {
				if r.Metadata["key"] != "k" {
					t.Errorf("metadata = %v", r.Metadata)
				}
			}},
		{Name: "no key", Operation: "get", WantCode: codes.InvalidArgument},
	},
}

func TestCorrectOutputBindingPasses(t *testing.T) {
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return &kvBinding{} }, kvCase)
}

// feed is an in-memory event source; nacked events come again when redeliver is set.
type feed struct {
	ch chan string
}

type feedBinding struct {
	f         *feed
	redeliver bool
}

func (b *feedBinding) Init(context.Context, sdk.Metadata) error { return nil }

func (b *feedBinding) Read(ctx context.Context, h sdk.BindingHandler) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-b.f.ch:
			go func() {
				if _, err := h(ctx, &sdk.BindingEvent{Data: []byte(s), Metadata: map[string]string{"src": "feed"}}); err != nil && b.redeliver && ctx.Err() == nil {
					b.f.ch <- s
				}
			}()
		}
	}
}

func TestCorrectInputBindingPasses(t *testing.T) {
	f := &feed{ch: make(chan string, 100)}
	sdktest.ExerciseInputBinding(t, func() sdk.InputBinding { return &feedBinding{f: f, redeliver: true} }, sdktest.InputBindingCase{
		Trigger:    func(_ *testing.T, tok string) { f.ch <- tok },
		Redelivers: true,
		Within:     5 * time.Second,
	})
}

// ticker fires on its own, like cron.
type ticker struct{}

func (ticker) Init(context.Context, sdk.Metadata) error { return nil }
func (ticker) Read(ctx context.Context, h sdk.BindingHandler) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = h(ctx, &sdk.BindingEvent{})
		}
	}
}

func TestSelfFiringInputBindingPasses(t *testing.T) {
	sdktest.ExerciseInputBinding(t, func() sdk.InputBinding { return ticker{} }, sdktest.InputBindingCase{Within: 5 * time.Second})
}

const brokenBindingEnv = "SDKTEST_BROKEN_BINDING"

var brokenBindings = map[string]string{
	"no-operations":     "--- FAIL: TestBrokenBindingHelper/operations",
	"drops-on-nack":     "--- FAIL: TestBrokenBindingHelper/nack",
	"wrong-get-answers": "--- FAIL: TestBrokenBindingHelper/call_get",
}

// TestBrokenBindingHelper runs the kit on one broken binding; it only does
// anything when TestKitCatchesBrokenBindings starts it in a child process.
func TestBrokenBindingHelper(t *testing.T) {
	switch os.Getenv(brokenBindingEnv) {
	case "":
		t.Skip("helper: runs only as a child of TestKitCatchesBrokenBindings")
	case "no-operations":
		sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return &kvBinding{noOps: true} }, kvCase)
	case "wrong-get-answers":
		c := kvCase
		c.Calls = append([]sdktest.OutputCall(nil), c.Calls...)
		c.Calls[1].WantData = []byte("v2")
		sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return &kvBinding{} }, c)
	case "drops-on-nack":
		f := &feed{ch: make(chan string, 100)}
		sdktest.ExerciseInputBinding(t, func() sdk.InputBinding { return &feedBinding{f: f} }, sdktest.InputBindingCase{
			Trigger: func(_ *testing.T, tok string) { f.ch <- tok }, Redelivers: true, Within: 2 * time.Second,
		})
	}
}

func TestKitCatchesBrokenBindings(t *testing.T) {
	for name, want := range brokenBindings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenBindingHelper$", "-test.v")
			cmd.Env = append(os.Environ(), brokenBindingEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("conformance passed a broken binding (%s):\n%s", name, out)
			}
			if !strings.Contains(string(out), want) {
				t.Fatalf("want %q in the output:\n%s", want, out)
			}
		})
	}
}
