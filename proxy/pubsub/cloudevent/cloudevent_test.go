package cloudevent

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	base := Input{Source: "app1", Topic: "orders", Pubsub: "ps", TraceParent: "00-aaa-bbb-01", TraceState: "k=v", Now: now}
	with := func(f func(*Input)) Input { in := base; f(&in); return in }
	tests := []struct {
		name  string
		in    Input
		check func(t *testing.T, ce map[string]any)
	}{
		{"json data parsed", with(func(in *Input) { in.Data = []byte(`{"a":1}`); in.ContentType = "application/json" }), func(t *testing.T, ce map[string]any) {
			if m, ok := ce["data"].(map[string]any); !ok || m["a"] != float64(1) {
				t.Errorf("data = %#v", ce["data"])
			}
			for k, v := range map[string]string{"source": "app1", "type": DefaultType, "specversion": "1.0", "datacontenttype": "application/json",
				"topic": "orders", "pubsubname": "ps", "traceparent": "00-aaa-bbb-01", "traceid": "00-aaa-bbb-01", "tracestate": "k=v",
				"time": "2024-05-01T12:00:00Z"} {
				if ce[k] != v {
					t.Errorf("%s = %v, want %v", k, ce[k], v)
				}
			}
			if id, _ := ce["id"].(string); len(id) != 36 {
				t.Errorf("id %q is not a uuid", id)
			}
			if _, ok := ce["expiration"]; ok {
				t.Error("no ttl, yet an expiration")
			}
		}},
		{"invalid json falls back to string", with(func(in *Input) { in.Data = []byte(`{oops`); in.ContentType = "application/json" }), func(t *testing.T, ce map[string]any) {
			if ce["data"] != "{oops" {
				t.Errorf("data = %#v", ce["data"])
			}
		}},
		{"default content type text/plain", with(func(in *Input) { in.Data = []byte("hi") }), func(t *testing.T, ce map[string]any) {
			if ce["data"] != "hi" || ce["datacontenttype"] != "text/plain" {
				t.Errorf("%v %v", ce["data"], ce["datacontenttype"])
			}
		}},
		{"binary as data_base64", with(func(in *Input) { in.Data = []byte{0, 1, 2}; in.ContentType = "application/octet-stream" }), func(t *testing.T, ce map[string]any) {
			if ce["data_base64"] != base64.StdEncoding.EncodeToString([]byte{0, 1, 2}) {
				t.Errorf("data_base64 = %v", ce["data_base64"])
			}
			if _, ok := ce["data"]; ok {
				t.Error("binary event has data")
			}
		}},
		{"metadata overrides", with(func(in *Input) {
			in.Data = []byte("x")
			in.Metadata = map[string]string{"cloudevent.id": "my-id", "cloudevent.source": "src", "cloudevent.type": "t", "cloudevent.traceparent": "00-ccc-ddd-01", "partitionKey": "p"}
		}), func(t *testing.T, ce map[string]any) {
			if ce["id"] != "my-id" || ce["source"] != "src" || ce["type"] != "t" || ce["traceparent"] != "00-ccc-ddd-01" || ce["traceid"] != "00-ccc-ddd-01" {
				t.Errorf("overrides not applied: %v", ce)
			}
			if _, ok := ce["partitionKey"]; ok {
				t.Error("broker metadata leaked into the envelope")
			}
		}},
		{"ttl adds expiration", with(func(in *Input) { in.Data = []byte("x"); in.Metadata = map[string]string{"ttlInSeconds": "30"} }), func(t *testing.T, ce map[string]any) {
			if ce["expiration"] != "2024-05-01T12:00:30Z" {
				t.Errorf("expiration = %v", ce["expiration"])
			}
		}},
		{"broker ttl: no expiration", with(func(in *Input) {
			in.Data = []byte("x")
			in.BrokerTTL = true
			in.Metadata = map[string]string{"ttlInSeconds": "30"}
		}), func(t *testing.T, ce map[string]any) {
			if _, ok := ce["expiration"]; ok {
				t.Error("expiration set although the broker expires messages")
			}
		}},
		{"user cloudevent kept, missing filled", with(func(in *Input) {
			in.ContentType = "application/cloudevents+json"
			in.Data = []byte(`{"id":"u1","source":"me","type":"my.type","specversion":"1.0","data":{"x":1},"topic":"wrong","custom":"c"}`)
		}), func(t *testing.T, ce map[string]any) {
			if ce["id"] != "u1" || ce["source"] != "me" || ce["type"] != "my.type" || ce["custom"] != "c" {
				t.Errorf("user fields changed: %v", ce)
			}
			if ce["topic"] != "orders" || ce["pubsubname"] != "ps" || ce["time"] != "2024-05-01T12:00:00Z" || ce["traceparent"] != "00-aaa-bbb-01" {
				t.Errorf("fields not filled: %v", ce)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ce, err := New(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, ce)
		})
	}
}

func TestNewErrors(t *testing.T) {
	for name, in := range map[string]Input{
		"bad cloudevent": {ContentType: "application/cloudevents+json", Data: []byte("[1]")},
		"bad ttl":        {Data: []byte("x"), Metadata: map[string]string{"ttlInSeconds": "soon"}},
		"negative ttl":   {Data: []byte("x"), Metadata: map[string]string{"ttlInSeconds": "-1"}},
	} {
		if _, err := New(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := RawPayload(map[string]string{"rawPayload": "yes please"}); err == nil {
		t.Error("rawPayload=yes please accepted")
	}
}

func TestDeliverySide(t *testing.T) {
	ce := FromRaw([]byte("raw"), "t", "ps")
	if ce["source"] != "Dapr" || ce["datacontenttype"] != "application/octet-stream" || ce["data_base64"] != base64.StdEncoding.EncodeToString([]byte("raw")) {
		t.Fatalf("FromRaw: %v", ce)
	}
	if b, err := Data(ce); err != nil || string(b) != "raw" {
		t.Fatalf("Data(raw) = %q, %v", b, err)
	}
	if b, _ := Data(map[string]any{"datacontenttype": "application/json", "data": map[string]any{"a": "b"}}); string(b) != `{"a":"b"}` {
		t.Fatalf("Data(json) = %s", b)
	}
	now := time.Now()
	if !Expired(map[string]any{"expiration": now.Add(-time.Second).UTC().Format(time.RFC3339)}, now) {
		t.Error("past expiration not expired")
	}
	if Expired(map[string]any{"expiration": now.Add(time.Minute).UTC().Format(time.RFC3339)}, now) || Expired(map[string]any{}, now) {
		t.Error("future / no expiration expired")
	}
}
