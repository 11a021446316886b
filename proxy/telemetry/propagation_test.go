package telemetry_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"runtime"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/outrigger/outrigger/proxy/telemetry"
)

func TestParseTraceparent(t *testing.T) {
	cases := []struct {
		in      string
		ok      bool
		sampled bool
	}{
		{"00-" + parentTrace + "-" + parentSpan + "-01", true, true},
		{"00-" + parentTrace + "-" + parentSpan + "-00", true, false},
		{"00-" + parentTrace + "-" + parentSpan + "-03", true, true},         // unknown flags ignored
		{"01-" + parentTrace + "-" + parentSpan + "-01-extra", true, true},   // future version with more fields
		{"01-" + parentTrace + "-" + parentSpan + "-01", true, true},         // future version, same fields
		{"00-" + parentTrace + "-" + parentSpan + "-01-extra", false, false}, // version 00 is exactly 55 chars
		{"ff-" + parentTrace + "-" + parentSpan + "-01", false, false},
		{"00-00000000000000000000000000000000-" + parentSpan + "-01", false, false},
		{"00-" + parentTrace + "-0000000000000000-01", false, false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + parentSpan + "-01", false, false}, // uppercase
		{"00-" + parentTrace + "-" + parentSpan + "-0g", false, false},
		{"00_" + parentTrace + "-" + parentSpan + "-01", false, false},
		{"", false, false},
		{"garbage", false, false},
	}
	for _, c := range cases {
		sc, ok := telemetry.ParseTraceparent(c.in)
		if ok != c.ok {
			t.Errorf("%q: ok=%v, want %v", c.in, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if sc.TraceID().String() != parentTrace || sc.SpanID().String() != parentSpan || sc.IsSampled() != c.sampled || !sc.IsRemote() {
			t.Errorf("%q: parsed %v", c.in, sc)
		}
		if got := telemetry.FormatTraceparent(sc); got[:53] != "00-"+parentTrace+"-"+parentSpan+"-" {
			t.Errorf("%q: formatted %q", c.in, got)
		}
	}
	if telemetry.FormatTraceparent(trace.SpanContext{}) != "" {
		t.Error("invalid span context formatted")
	}
}

func TestGRPCTraceBinLayout(t *testing.T) {
	sc, _ := telemetry.ParseTraceparent("00-" + parentTrace + "-" + parentSpan + "-01")
	bin := telemetry.BinaryFromSpanContext(sc)
	// version 0 | field 0 + trace id | field 1 + span id | field 2 + options
	want, _ := hex.DecodeString("00" + "00" + parentTrace + "01" + parentSpan + "02" + "01")
	if !bytes.Equal(bin, want) {
		t.Fatalf("binary %x, want %x", bin, want)
	}
	back, ok := telemetry.SpanContextFromBinary(bin)
	if !ok || back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || !back.IsSampled() {
		t.Fatalf("round trip %v %v", back, ok)
	}
	for _, bad := range [][]byte{nil, {1}, append([]byte{1}, bin[1:]...), bin[:10], make([]byte, 29)} {
		if _, ok := telemetry.SpanContextFromBinary(bad); ok {
			t.Errorf("accepted %x", bad)
		}
	}
	if telemetry.BinaryFromSpanContext(trace.SpanContext{}) != nil {
		t.Error("invalid span context encoded")
	}
}

func TestSpanContextFromGRPCPrefersBinaryThenTraceparent(t *testing.T) {
	other := "11111111111111111111111111111111"
	binSC, _ := telemetry.ParseTraceparent("00-" + other + "-" + parentSpan + "-01")
	md := metadata.Pairs(
		telemetry.GRPCTraceBinKey, string(telemetry.BinaryFromSpanContext(binSC)),
		"traceparent", "00-"+parentTrace+"-"+parentSpan+"-01",
	)
	sc, ok := telemetry.SpanContextFromGRPC(md)
	if !ok || sc.TraceID().String() != other {
		t.Fatalf("grpc-trace-bin not preferred: %v", sc)
	}
	md = metadata.Pairs("traceparent", "00-"+parentTrace+"-"+parentSpan+"-01", "tracestate", "a=1,b=2")
	sc, ok = telemetry.SpanContextFromGRPC(md)
	if !ok || sc.TraceID().String() != parentTrace || sc.TraceState().String() != "a=1,b=2" {
		t.Fatalf("traceparent fallback: %v %q", sc, sc.TraceState().String())
	}
	if _, ok := telemetry.SpanContextFromGRPC(metadata.MD{}); ok {
		t.Fatal("empty metadata gave a parent")
	}
}

func TestInjectAndExtract(t *testing.T) {
	parent, _ := telemetry.ParseTraceparent("00-" + parentTrace + "-" + parentSpan + "-01")
	ctx := trace.ContextWithSpanContext(context.Background(), parent)

	h := http.Header{"traceparent": {"stale"}}
	telemetry.InjectHTTP(ctx, h)
	if len(h["traceparent"]) != 0 || h.Get("Traceparent") != "00-"+parentTrace+"-"+parentSpan+"-01" {
		t.Fatalf("InjectHTTP: %v", h)
	}
	if got := trace.SpanContextFromContext(telemetry.ExtractHTTP(context.Background(), h)); got.TraceID() != parent.TraceID() {
		t.Fatalf("ExtractHTTP: %v", got)
	}

	out := telemetry.InjectGRPC(metadata.AppendToOutgoingContext(ctx, "keep", "me"))
	md, _ := metadata.FromOutgoingContext(out)
	if md.Get("keep")[0] != "me" || md.Get("traceparent")[0] != "00-"+parentTrace+"-"+parentSpan+"-01" || len(md.Get(telemetry.GRPCTraceBinKey)) != 1 {
		t.Fatalf("InjectGRPC: %v", md)
	}
	in := metadata.NewIncomingContext(context.Background(), md)
	if got := trace.SpanContextFromContext(telemetry.ExtractGRPC(in)); got.SpanID() != parent.SpanID() {
		t.Fatalf("ExtractGRPC: %v", got)
	}

	// CloudEvents carry traceparent/tracestate as strings.
	ce := telemetry.ContextWithTraceparent(context.Background(), telemetry.Traceparent(ctx), "k=v")
	if got := trace.SpanContextFromContext(ce); got.TraceID() != parent.TraceID() || telemetry.Tracestate(ce) != "k=v" {
		t.Fatalf("ContextWithTraceparent: %v", got)
	}
	if telemetry.ContextWithTraceparent(context.Background(), "nope", "") != context.Background() {
		t.Fatal("a malformed traceparent changed the context")
	}
	if telemetry.Traceparent(context.Background()) != "" {
		t.Fatal("traceparent without a span")
	}
}

// TestSetHTTPHeadersDoesNotGrowAFullHeaderMap: a call forwarded to the callee
// sidecar often carries exactly 8 headers, traceparent among them; replacing
// it must cost the new value only (a traceparent string and its slice), not
// a rebuilt map, on every traced call.
func TestSetHTTPHeadersDoesNotGrowAFullHeaderMap(t *testing.T) {
	sc, ok := telemetry.ParseTraceparent("00-" + parentTrace + "-" + parentSpan + "-01")
	if !ok {
		t.Fatal("fixture traceparent does not parse")
	}
	least := uint64(1 << 20)
	for range 5 { // the fewest of a few tries: a background allocation must not fail the test
		h := make(http.Header, 6)
		for _, k := range []string{"Content-Type", "Traceparent", "Host", "Dapr-Caller-App-Id", "Dapr-Callee-App-Id",
			"X-Forwarded-For", "X-Forwarded-Host", "Forwarded"} {
			h[k] = []string{"v"}
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		telemetry.SetHTTPHeaders(h, sc)
		runtime.ReadMemStats(&after)
		least = min(least, after.Mallocs-before.Mallocs)
		if got := h.Get("traceparent"); got != telemetry.FormatTraceparent(sc) || len(h) != 8 {
			t.Fatalf("traceparent %q, %d headers", got, len(h))
		}
	}
	if least > 2 {
		t.Errorf("SetHTTPHeaders made %d allocations, want at most 2", least)
	}
}
