package cloudevent

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Field names of the envelope.
const (
	FieldID              = "id"
	FieldSource          = "source"
	FieldType            = "type"
	FieldSpecVersion     = "specversion"
	FieldDataContentType = "datacontenttype"
	FieldData            = "data"
	FieldDataBase64      = "data_base64"
	FieldSubject         = "subject"
	FieldTopic           = "topic"
	FieldPubsub          = "pubsubname"
	FieldTraceID         = "traceid"
	FieldTraceParent     = "traceparent"
	FieldTraceState      = "tracestate"
	FieldTime            = "time"
	FieldExpiration      = "expiration"
)

// Defaults Dapr uses.
const (
	SpecVersion        = "1.0"
	DefaultType        = "com.dapr.event.sent"
	DefaultContentType = "text/plain"
	ContentType        = "application/cloudevents+json"
	RawSource          = "Dapr"
)

// Request metadata keys the envelope honours.
const (
	MetaRawPayload   = "rawPayload"
	MetaTTLInSeconds = "ttlInSeconds"
	metaOverride     = "cloudevent."
)

// Input is what a publish request contributes to its envelope.
type Input struct {
	Data        []byte
	ContentType string // request Content-Type / data_content_type
	Source      string // the publishing app's id
	Topic       string
	Pubsub      string
	TraceParent string // W3C traceparent of the incoming request, if any
	TraceState  string
	// Metadata is the request metadata (metadata.* query parameters or the
	// gRPC metadata map): cloudevent.* overrides and ttlInSeconds are read.
	Metadata map[string]string
	// BrokerTTL is true when the broker expires messages itself (feature
	// MESSAGE_TTL); no expiration is added then.
	BrokerTTL bool
	// Now is the clock; zero means time.Now.
	Now time.Time
}

// New builds the envelope of a published event. It fails when a user-supplied
// application/cloudevents+json body is not a JSON object or ttlInSeconds is not
// a non-negative integer.
func New(in Input) (map[string]any, error) {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	ttl, hasTTL, err := TTL(in.Metadata)
	if err != nil {
		return nil, err
	}
	var ce map[string]any
	if IsCloudEvent(in.ContentType) {
		if err := json.Unmarshal(in.Data, &ce); err != nil || ce == nil {
			if err == nil {
				err = fmt.Errorf("not a JSON object")
			}
			return nil, fmt.Errorf("cloudevent: parse application/cloudevents+json body: %w", err)
		}
		fill(ce, FieldTime, now.Format(time.RFC3339))
		fill(ce, FieldTraceID, in.TraceParent)
		fill(ce, FieldTraceParent, in.TraceParent)
		fill(ce, FieldTraceState, in.TraceState)
		fill(ce, FieldSource, in.Source)
		fill(ce, FieldType, DefaultType)
		fill(ce, FieldSpecVersion, SpecVersion)
		ce[FieldTopic] = in.Topic
		ce[FieldPubsub] = in.Pubsub
	} else {
		over := overrides(in.Metadata)
		id, source, typ := over["id"], in.Source, DefaultType
		if v := over["source"]; v != "" {
			source = v
		}
		if v := over["type"]; v != "" {
			typ = v
		}
		if id == "" {
			id = uuid.NewString()
		}
		traceParent, traceState := in.TraceParent, in.TraceState
		if v := over["traceid"]; v != "" {
			traceParent = v
		}
		if v := over["traceparent"]; v != "" {
			traceParent = v
		}
		if v := over["tracestate"]; v != "" {
			traceState = v
		}
		ct := in.ContentType
		if ct == "" {
			ct = DefaultContentType
		}
		ce = map[string]any{
			FieldID: id, FieldSpecVersion: SpecVersion, FieldDataContentType: ct,
			FieldSource: source, FieldType: typ, FieldTopic: in.Topic, FieldPubsub: in.Pubsub,
			FieldTraceID: traceParent, FieldTraceParent: traceParent, FieldTraceState: traceState,
			FieldTime: now.Format(time.RFC3339),
		}
		switch {
		case IsJSON(ct):
			var v any
			if err := json.Unmarshal(in.Data, &v); err != nil {
				ce[FieldData] = string(in.Data) // Dapr falls back to the string
			} else {
				ce[FieldData] = v
			}
		case IsBinary(ct):
			ce[FieldDataBase64] = base64.StdEncoding.EncodeToString(in.Data)
		default:
			ce[FieldData] = string(in.Data)
		}
	}
	if hasTTL && !in.BrokerTTL {
		ce[FieldExpiration] = now.UTC().Add(ttl).Format(time.RFC3339)
	}
	return ce, nil
}

// fill sets ce[k] = v when k is absent.
func fill(ce map[string]any, k, v string) {
	if _, ok := ce[k]; !ok {
		ce[k] = v
	}
}

// overrides returns the cloudevent.* metadata, keys lower-cased (Dapr decodes
// them case-insensitively).
func overrides(md map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range md {
		if len(k) > len(metaOverride) && strings.EqualFold(k[:len(metaOverride)], metaOverride) {
			out[strings.ToLower(k[len(metaOverride):])] = v
		}
	}
	return out
}

// TTL reads metadata ttlInSeconds. A value that is not a non-negative integer
// is an error.
func TTL(md map[string]string) (time.Duration, bool, error) {
	v, ok := md[MetaTTLInSeconds]
	if !ok || v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("cloudevent: metadata %s=%q is not a non-negative integer", MetaTTLInSeconds, v)
	}
	return time.Duration(n) * time.Second, true, nil
}

// RawPayload reads metadata rawPayload (strconv.ParseBool; absent = false).
func RawPayload(md map[string]string) (bool, error) {
	v, ok := md[MetaRawPayload]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("cloudevent: metadata %s=%q is not a boolean", MetaRawPayload, v)
	}
	return b, nil
}

// FromRaw wraps the raw bytes of a message published with rawPayload into an
// envelope for delivery, as Dapr does.
func FromRaw(data []byte, topic, pubsub string) map[string]any {
	return map[string]any{
		FieldID: uuid.NewString(), FieldSpecVersion: SpecVersion, FieldDataContentType: "application/octet-stream",
		FieldSource: RawSource, FieldType: DefaultType, FieldTopic: topic, FieldPubsub: pubsub,
		FieldDataBase64: base64.StdEncoding.EncodeToString(data),
	}
}

// Expired reports whether the event has an RFC3339 expiration before now. An
// unparsable expiration never expires (as Dapr).
func Expired(ce map[string]any, now time.Time) bool {
	s, ok := ce[FieldExpiration].(string)
	if !ok || s == "" {
		return false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return false
	}
	return t.Before(now)
}

// String returns the string field k of ce, or "".
func String(ce map[string]any, k string) string {
	s, _ := ce[k].(string)
	return s
}

// Data returns the event's payload as a gRPC app receives it: data_base64
// decoded; string data as its bytes for string content types; JSON data
// re-serialised for JSON content types.
func Data(ce map[string]any) ([]byte, error) {
	if v, ok := ce[FieldDataBase64]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("cloudevent: data_base64 is not a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("cloudevent: decode data_base64: %w", err)
		}
		return b, nil
	}
	v, ok := ce[FieldData]
	if !ok || v == nil {
		return nil, nil
	}
	ct := String(ce, FieldDataContentType)
	switch {
	case IsString(ct):
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("cloudevent: data of content type %s is not a string", ct)
		}
		return []byte(s), nil
	case IsJSON(ct) || IsCloudEvent(ct):
		return json.Marshal(v)
	}
	return nil, nil
}

// mediaType is the lower-cased content type without parameters.
func mediaType(ct string) string {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	return ct
}

// IsCloudEvent reports application/cloudevents+json.
func IsCloudEvent(ct string) bool { return mediaType(ct) == ContentType }

// IsJSON reports application/json and other +json types (cloudevents aside).
func IsJSON(ct string) bool {
	m := mediaType(ct)
	return m == "application/json" || (strings.HasSuffix(m, "+json") && m != ContentType)
}

// IsBinary reports application/octet-stream.
func IsBinary(ct string) bool { return mediaType(ct) == "application/octet-stream" }

// IsString reports text/* and application/xml.
func IsString(ct string) bool {
	m := mediaType(ct)
	return strings.HasPrefix(m, "text/") || m == "application/xml"
}
