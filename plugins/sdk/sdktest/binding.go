package sdktest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// OutputBindingCase describes the output binding under test.
type OutputBindingCase struct {
	// Metadata is passed to Init.
	Metadata sdk.Metadata
	// BadMetadata, when non-nil, must make Init fail.
	BadMetadata sdk.Metadata
	// Operations must all be listed by ListOperations (it may list more).
	Operations []string
	// Calls run in order on one instance, each as its own subtest.
	Calls []OutputCall
}

// OutputCall is one Invoke and what it must answer.
type OutputCall struct {
	Name      string
	Operation string
	Data      []byte
	Metadata  map[string]string
	// WantCode, when not OK, is the gRPC code the call must fail with
	// (sdk.ErrBadRequest and sdk.ErrOperationNotSupported map to
	// InvalidArgument, other errors to Internal).
	WantCode codes.Code
	// WantData, when non-nil, must equal the response data.
	WantData []byte
	// Check, when set, inspects a successful response.
	Check func(t *testing.T, resp *sdk.InvokeResponse)
}

// ExerciseOutputBinding checks an output binding against the plugin contract
// through the SDK's real gRPC server: an uninitialised instance is refused,
// Init (and a failing Init for BadMetadata), ListOperations (also before
// Init), Ping, a missing and an unknown operation refused with
// InvalidArgument, every call of the case in order, and a second instance
// side by side.
func ExerciseOutputBinding(t *testing.T, newBinding func() sdk.OutputBinding, c OutputBindingCase) {
	t.Helper()
	if probe := newBinding(); probe == nil {
		t.Fatal("factory returned a nil binding")
	} else if cl, ok := probe.(sdk.Closer); ok {
		_ = cl.Close() // never Init'ed; closing must be harmless
	}
	client := componentsv1.NewOutputBindingClient(serveOption(t, sdk.WithOutputBinding(newBinding)))
	instance := "conformance-" + randomID()
	initOut := func(inst string, md sdk.Metadata) error {
		ctx, cancel := instanceCtx(inst, callTimeout)
		defer cancel()
		_, err := client.Init(ctx, &componentsv1.OutputBindingInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: md}})
		return err
	}
	invoke := func(inst string, req *componentsv1.InvokeRequest) (*componentsv1.InvokeResponse, error) {
		ctx, cancel := instanceCtx(inst, callTimeout)
		defer cancel()
		return client.Invoke(ctx, req)
	}
	listOps := func(t *testing.T, inst string) []string {
		t.Helper()
		ctx, cancel := instanceCtx(inst, callTimeout)
		defer cancel()
		resp, err := client.ListOperations(ctx, &componentsv1.ListOperationsRequest{})
		if err != nil {
			t.Fatalf("ListOperations: %v", err)
		}
		return resp.GetOperations()
	}

	t.Run("uninitialised instance", func(t *testing.T) {
		op := "create"
		if len(c.Operations) > 0 {
			op = c.Operations[0]
		}
		_, err := invoke("never-initialised-"+randomID(), &componentsv1.InvokeRequest{Operation: op})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("Invoke on an uninitialised instance: %v, want FailedPrecondition", err)
		}
		for _, want := range c.Operations {
			if ops := listOps(t, "never-initialised-"+randomID()); !slices.Contains(ops, want) {
				t.Fatalf("ListOperations before Init = %v, lacks %q", ops, want)
			}
		}
	})
	if c.BadMetadata != nil {
		t.Run("bad metadata", func(t *testing.T) {
			err := initOut("bad-"+randomID(), c.BadMetadata)
			if err == nil {
				t.Fatalf("Init with %v succeeded, want an error", c.BadMetadata)
			}
			if status.Convert(err).Message() == "" {
				t.Fatal("Init failed without a message")
			}
		})
	}
	if err := initOut(instance, c.Metadata); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Run("operations", func(t *testing.T) {
		ops := listOps(t, instance)
		if len(ops) == 0 {
			t.Fatal("ListOperations is empty")
		}
		for _, want := range c.Operations {
			if !slices.Contains(ops, want) {
				t.Errorf("ListOperations = %v, lacks %q", ops, want)
			}
		}
	})
	t.Run("ping", func(t *testing.T) {
		ctx, cancel := instanceCtx(instance, callTimeout)
		defer cancel()
		if _, err := client.Ping(ctx, &componentsv1.PingRequest{}); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("bad operation", func(t *testing.T) {
		if _, err := invoke(instance, &componentsv1.InvokeRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Invoke without an operation: %v, want InvalidArgument", err)
		}
		if _, err := invoke(instance, &componentsv1.InvokeRequest{Operation: "conformance-no-such-op"}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Invoke of an unknown operation: %v, want InvalidArgument", err)
		}
	})
	for i, call := range c.Calls {
		name := call.Name
		if name == "" {
			name = call.Operation + "#" + string(rune('0'+i%10))
		}
		t.Run("call "+name, func(t *testing.T) {
			resp, err := invoke(instance, &componentsv1.InvokeRequest{Operation: call.Operation, Data: call.Data, Metadata: call.Metadata})
			if call.WantCode != codes.OK {
				if status.Code(err) != call.WantCode {
					t.Fatalf("Invoke %s: (%v, %v), want code %s", call.Operation, resp, err, call.WantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Invoke %s: %v", call.Operation, err)
			}
			if call.WantData != nil && !bytes.Equal(resp.GetData(), call.WantData) {
				t.Fatalf("Invoke %s data = %q, want %q", call.Operation, resp.GetData(), call.WantData)
			}
			if call.Check != nil {
				call.Check(t, &sdk.InvokeResponse{Data: resp.GetData(), Metadata: resp.GetMetadata(), ContentType: resp.GetContentType()})
			}
		})
	}
	t.Run("instances", func(t *testing.T) {
		second := "conformance-second-" + randomID()
		if err := initOut(second, c.Metadata); err != nil {
			t.Fatalf("Init of a second instance: %v", err)
		}
		ctx, cancel := instanceCtx(second, callTimeout)
		defer cancel()
		if _, err := client.Ping(ctx, &componentsv1.PingRequest{}); err != nil {
			t.Fatalf("Ping of the second instance: %v", err)
		}
		if ops := listOps(t, second); len(ops) == 0 {
			t.Fatal("second instance lists no operations")
		}
	})
}

// InputBindingCase describes the input binding under test.
type InputBindingCase struct {
	// Metadata is passed to Init.
	Metadata sdk.Metadata
	// BadMetadata, when non-nil, must make Init fail.
	BadMetadata sdk.Metadata
	// Trigger makes the binding's source produce one event whose data
	// contains token (e.g. publishes token to the MQTT topic). Nil for a
	// binding that fires on its own (cron): the kit then waits for events.
	Trigger func(t *testing.T, token string)
	// Within bounds how long an event may take (default 15 s).
	Within time.Duration
	// Redelivers says a nacked event must come again (brokers); the kit
	// then checks it. Without it, a nack must not stop later events.
	Redelivers bool
}

// ExerciseInputBinding checks an input binding against the plugin contract
// through the SDK's real gRPC server: an uninitialised instance is refused,
// Init (and a failing Init for BadMetadata), Ping, events delivered on a
// Read stream and answered, a nack (redelivered when Redelivers), and
// events again on a new stream after the first one closed.
func ExerciseInputBinding(t *testing.T, newBinding func() sdk.InputBinding, c InputBindingCase) {
	t.Helper()
	if c.Within <= 0 {
		c.Within = 15 * time.Second
	}
	if probe := newBinding(); probe == nil {
		t.Fatal("factory returned a nil binding")
	} else if cl, ok := probe.(sdk.Closer); ok {
		_ = cl.Close()
	}
	client := componentsv1.NewInputBindingClient(serveOption(t, sdk.WithInputBinding(newBinding)))
	h := &inputHarness{c: c, client: client, instance: "conformance-" + randomID(), run: randomID()}

	t.Run("uninitialised instance", func(t *testing.T) {
		ctx, cancel := instanceCtx("never-initialised-"+randomID(), callTimeout)
		defer cancel()
		st, err := client.Read(ctx)
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("Read on an uninitialised instance: %v, want FailedPrecondition", err)
		}
	})
	if c.BadMetadata != nil {
		t.Run("bad metadata", func(t *testing.T) {
			if err := h.init("bad-"+randomID(), c.BadMetadata); err == nil {
				t.Fatalf("Init with %v succeeded, want an error", c.BadMetadata)
			}
		})
	}
	if err := h.init(h.instance, c.Metadata); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Run("ping", func(t *testing.T) {
		ctx, cancel := instanceCtx(h.instance, callTimeout)
		defer cancel()
		if _, err := client.Ping(ctx, &componentsv1.PingRequest{}); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("events", h.testEvents)
	t.Run("nack", h.testNack)
	t.Run("new stream after close", h.testEvents)
}

type inputHarness struct {
	c        InputBindingCase
	client   componentsv1.InputBindingClient
	instance string
	run      string
	n        int
}

func (h *inputHarness) init(inst string, md sdk.Metadata) error {
	ctx, cancel := instanceCtx(inst, callTimeout)
	defer cancel()
	_, err := h.client.Init(ctx, &componentsv1.InputBindingInitRequest{Metadata: &componentsv1.MetadataRequest{Properties: md}})
	return err
}

// readStream is one open Read stream with its events on a channel.
type kitReadStream struct {
	st     componentsv1.InputBinding_ReadClient
	events chan *componentsv1.ReadResponse
	errc   chan error
	cancel context.CancelFunc
}

func (h *inputHarness) open(t *testing.T) *kitReadStream {
	t.Helper()
	ctx, cancel := instanceCtx(h.instance, 5*time.Minute)
	st, err := h.client.Read(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Read: %v", err)
	}
	rs := &kitReadStream{st: st, events: make(chan *componentsv1.ReadResponse, 1024), errc: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			ev, err := st.Recv()
			if err != nil {
				rs.errc <- err
				close(rs.events)
				return
			}
			rs.events <- ev
		}
	}()
	t.Cleanup(rs.close)
	return rs
}

func (rs *kitReadStream) close() {
	_ = rs.st.CloseSend()
	rs.cancel()
}

func (rs *kitReadStream) reply(t *testing.T, ev *componentsv1.ReadResponse, data []byte, nack string) {
	t.Helper()
	req := &componentsv1.ReadRequest{MessageId: ev.GetMessageId(), ResponseData: data}
	if nack != "" {
		req.ResponseError = &componentsv1.AckResponseError{Message: nack}
	}
	if err := rs.st.Send(req); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("replying to event %s: %v", ev.GetMessageId(), err)
	}
}

// next waits for an event matching token ("" = any), acking the others.
func (h *inputHarness) next(t *testing.T, rs *kitReadStream, token string, retrigger func()) *componentsv1.ReadResponse {
	t.Helper()
	deadline := time.After(h.c.Within)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-rs.events:
			if !ok {
				t.Fatalf("read stream ended while waiting for an event: %v", <-rs.errc)
			}
			if ev.GetMessageId() == "" {
				t.Fatalf("event without a message id: %v", ev)
			}
			if token == "" || bytes.Contains(ev.GetData(), []byte(token)) {
				return ev
			}
			rs.reply(t, ev, nil, "") // a warm-up or earlier event
		case <-tick.C:
			if retrigger != nil {
				retrigger()
			}
		case <-deadline:
			t.Fatalf("no event (token %q) within %v", token, h.c.Within)
		}
	}
}

func (h *inputHarness) token() string {
	h.n++
	return "conformance-" + h.run + "-" + strings.Repeat("x", h.n%3) + randomID()
}

// warm makes sure the stream's subscription is live: it triggers probes
// until one arrives (brokers may drop events published before a subscribe).
func (h *inputHarness) warm(t *testing.T, rs *kitReadStream) {
	t.Helper()
	if h.c.Trigger == nil {
		return
	}
	probe := "probe-" + h.run
	h.c.Trigger(t, probe+"-"+randomID())
	ev := h.next(t, rs, probe, func() { h.c.Trigger(t, probe+"-"+randomID()) })
	rs.reply(t, ev, nil, "")
}

func (h *inputHarness) testEvents(t *testing.T) {
	rs := h.open(t)
	defer rs.close()
	h.warm(t, rs)
	for range 2 {
		tok := ""
		if h.c.Trigger != nil {
			tok = h.token()
			h.c.Trigger(t, tok)
		}
		ev := h.next(t, rs, tok, nil)
		rs.reply(t, ev, []byte(`{"ok":true}`), "")
	}
}

func (h *inputHarness) testNack(t *testing.T) {
	rs := h.open(t)
	defer rs.close()
	h.warm(t, rs)
	tok := ""
	if h.c.Trigger != nil {
		tok = h.token()
		h.c.Trigger(t, tok)
	}
	ev := h.next(t, rs, tok, nil)
	rs.reply(t, ev, nil, "conformance: app failed")
	if h.c.Redelivers {
		again := h.next(t, rs, tok, nil)
		if !bytes.Equal(again.GetData(), ev.GetData()) {
			t.Fatalf("redelivered data %q, want %q", again.GetData(), ev.GetData())
		}
		rs.reply(t, again, nil, "")
		return
	}
	// A binding that does not redeliver must keep delivering.
	tok2 := ""
	if h.c.Trigger != nil {
		tok2 = h.token()
		h.c.Trigger(t, tok2)
	}
	ev2 := h.next(t, rs, tok2, nil)
	rs.reply(t, ev2, nil, "")
}
