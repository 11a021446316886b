package discovery

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []nodeMeta{
		{AppID: "a", InternalAddr: "127.0.0.1:50002"},
		{AppID: "orders-service", InternalAddr: "[::1]:1", ActorTypes: []string{"Cart", "Order"}},
		{AppID: "x", InternalAddr: "h:1", ActorTypes: []string{""}},
	}
	for _, in := range tests {
		b, err := in.encode()
		if err != nil {
			t.Fatalf("encode(%+v): %v", in, err)
		}
		out, err := decodeMeta(b)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", in, err)
		}
		if out.AppID != in.AppID || out.InternalAddr != in.InternalAddr || !slices.Equal(out.ActorTypes, in.ActorTypes) {
			t.Fatalf("round trip %+v → %+v", in, out)
		}
	}
	// Compact: a typical sidecar is a few dozen bytes.
	b, _ := nodeMeta{AppID: "checkout", InternalAddr: "127.0.0.1:50002", ActorTypes: []string{"Cart"}}.encode()
	if len(b) > 40 {
		t.Fatalf("typical metadata is %d bytes, want ≤ 40", len(b))
	}
}

func TestMetaTooLarge(t *testing.T) {
	types := make([]string, 40)
	for i := range types {
		types[i] = strings.Repeat("T", 12)
	}
	if _, err := (nodeMeta{AppID: "a", InternalAddr: "h:1", ActorTypes: types}).encode(); err == nil {
		t.Fatal("encode accepted more than 512 bytes")
	}
	huge := []string{strings.Repeat("T", 1<<20)}
	if _, err := (nodeMeta{AppID: "a", InternalAddr: "h:1", ActorTypes: huge}).encode(); err == nil {
		t.Fatal("encode accepted 1 MiB")
	}
}

func TestDecodeMetaRejectsMalformed(t *testing.T) {
	good, _ := nodeMeta{AppID: "app", InternalAddr: "h:1", ActorTypes: []string{"A"}}.encode()
	tests := map[string][]byte{
		"empty":              nil,
		"other version":      append([]byte{2}, good[1:]...),
		"truncated":          good[:len(good)-1],
		"trailing bytes":     append(slices.Clone(good), 0),
		"length past end":    {metaVersion, 50, 'a'},
		"huge type count":    {metaVersion, 1, 'a', 1, 'h', 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad varint":         {metaVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"empty app id":       {metaVersion, 0, 1, 'h', 0},
		"serf-style tag map": []byte("\x83\xa4role\xa4node"),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if m, err := decodeMeta(b); !errors.Is(err, errBadMeta) {
				t.Fatalf("decodeMeta = %+v, %v; want errBadMeta", m, err)
			}
		})
	}
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := nodeMeta{AppID: "app", InternalAddr: "h:1", ActorTypes: []string{"A", "B"}}.encode()
	f.Add(good)
	f.Add([]byte{metaVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		enc, err := m.encode()
		if err != nil {
			t.Fatalf("decoded %+v from %x but cannot encode it: %v", m, b, err)
		}
		again, err := decodeMeta(enc)
		if err != nil || again.AppID != m.AppID || again.InternalAddr != m.InternalAddr || !slices.Equal(again.ActorTypes, m.ActorTypes) {
			t.Fatalf("round trip of %+v gave %+v, %v", m, again, err)
		}
	})
}
