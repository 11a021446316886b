package pubsub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/google/uuid"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/pubsub/cloudevent"
)

// outcome is what the app made of a delivered message (retriable failures
// are errors instead).
type outcome int

const (
	outSuccess outcome = iota // ack
	outDrop                   // ack, and to the dead-letter topic if any (status DROP)
	outIgnore                 // ack, no dead letter (HTTP 404, gRPC Unimplemented)
)

// delivery is one message on its way to the app.
type delivery struct {
	ce       map[string]any
	data     []byte // the CloudEvent JSON
	pubsub   string
	topic    string
	path     string
	metadata map[string]string // broker metadata, plus pubsubName
	// traceparent and tracestate, when set, are the delivery span's context,
	// sent instead of the event's own.
	traceparent, tracestate string
}

// deliverer hands messages to whoever consumes them: the HTTP app, the gRPC
// app, or a streaming subscriber.
type deliverer interface {
	deliver(ctx context.Context, d *delivery) (outcome, error)
	// deliverBulk delivers entries routed to one path; it returns a result per
	// entry id (a missing id = retry). A non-nil error retries them all.
	deliverBulk(ctx context.Context, b *bulkDelivery) (map[string]outcome, error)
}

// bulkDelivery is a batch of entries for one path.
type bulkDelivery struct {
	pubsub, topic, path string
	raw                 bool
	entries             []*bulkItem
}

// retriable marks an error the inbound policy retries.
func retriable(format string, args ...any) error { return fmt.Errorf(format, args...) }

// appStatus reads a {"status": …} answer.
func appStatus(s string) (outcome, error) {
	switch strings.ToUpper(s) {
	case "", "SUCCESS":
		return outSuccess, nil
	case "DROP":
		return outDrop, nil
	case "RETRY":
		return 0, retriable("app asked to RETRY")
	}
	return 0, retriable("app answered unknown status %q", s)
}

// httpApp delivers to an HTTP app.
type httpApp struct{ ch AppChannel }

// headers builds the delivery headers: broker metadata (valid header fields
// only), trace context from the event, and the content type.
func headers(md map[string]string, ce map[string]any, contentType string) http.Header {
	h := http.Header{}
	for k, v := range md {
		if httpguts.ValidHeaderFieldName(k) && httpguts.ValidHeaderFieldValue(v) {
			h.Set(k, v)
		}
	}
	tp := cloudevent.String(ce, cloudevent.FieldTraceParent)
	if tp == "" {
		tp = cloudevent.String(ce, cloudevent.FieldTraceID)
	}
	if tp != "" {
		h.Set("traceparent", tp)
		if ts := cloudevent.String(ce, cloudevent.FieldTraceState); ts != "" {
			h.Set("tracestate", ts)
		}
	}
	h.Set("Content-Type", contentType)
	return h
}

func (h httpApp) post(ctx context.Context, path string, hdr http.Header, body []byte) (int, []byte, error) {
	resp, err := h.ch.Invoke(ctx, &appchannel.Request{
		Method: strings.TrimPrefix(path, "/"), Verb: http.MethodPost, Header: hdr,
		Body: bytes.NewReader(body), ContentLength: int64(len(body)),
	})
	if err != nil {
		return 0, nil, retriable("deliver to app: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, retriable("read app answer: %w", err)
	}
	return resp.Status, b, nil
}

func (h httpApp) deliver(ctx context.Context, d *delivery) (outcome, error) {
	hdr := headers(d.metadata, d.ce, cloudevent.ContentType)
	if d.traceparent != "" {
		hdr.Set("traceparent", d.traceparent)
		if d.tracestate != "" {
			hdr.Set("tracestate", d.tracestate)
		}
	}
	code, body, err := h.post(ctx, d.path, hdr, d.data)
	if err != nil {
		return 0, err
	}
	switch {
	case code >= 200 && code < 300:
		var r struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(body, &r) != nil {
			return outSuccess, nil // empty or non-JSON body: success
		}
		return appStatus(r.Status)
	case code == http.StatusNotFound:
		return outIgnore, nil
	}
	return 0, retriable("app answered %d: %.200s", code, body)
}

// bulkEnvelope is the HTTP bulk delivery body.
type bulkEnvelope struct {
	ID         string            `json:"id"`
	Entries    []bulkEnvEntry    `json:"entries"`
	Metadata   map[string]string `json:"metadata"`
	Topic      string            `json:"topic"`
	Pubsubname string            `json:"pubsubname"`
	Type       string            `json:"type"`
}

type bulkEnvEntry struct {
	EntryID     string            `json:"entryId"`
	Event       any               `json:"event"`
	Metadata    map[string]string `json:"metadata"`
	ContentType string            `json:"contentType,omitempty"`
}

func (h httpApp) deliverBulk(ctx context.Context, b *bulkDelivery) (map[string]outcome, error) {
	env := bulkEnvelope{ID: uuid.NewString(), Metadata: map[string]string{"pubsubName": b.pubsub}, Topic: b.topic, Pubsubname: b.pubsub, Type: cloudevent.DefaultType}
	for _, e := range b.entries {
		ee := bulkEnvEntry{EntryID: e.id, Metadata: e.msg.GetMetadata(), ContentType: e.msg.GetContentType()}
		if b.raw {
			ee.Event = base64.StdEncoding.EncodeToString(e.msg.GetData())
			if ee.ContentType == "" {
				ee.ContentType = "application/octet-stream"
			}
		} else {
			ee.Event = e.ce
			if ee.ContentType == "" {
				ee.ContentType = cloudevent.ContentType
			}
		}
		env.Entries = append(env.Entries, ee)
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, retriable("encode bulk delivery: %w", err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	code, rb, err := h.post(ctx, b.path, hdr, body)
	if err != nil {
		return nil, err
	}
	switch {
	case code >= 200 && code < 300:
		var r struct {
			Statuses []struct {
				EntryID string `json:"entryId"`
				Status  string `json:"status"`
			} `json:"statuses"`
		}
		if err := json.Unmarshal(rb, &r); err != nil {
			return nil, retriable("decode bulk answer: %w", err)
		}
		out := map[string]outcome{}
		for _, s := range r.Statuses {
			if o, err := appStatus(s.Status); err == nil && s.Status != "" {
				out[s.EntryID] = o
			}
		}
		return out, nil
	case code == http.StatusNotFound:
		out := map[string]outcome{}
		for _, e := range b.entries {
			out[e.id] = outIgnore
		}
		return out, nil
	}
	return nil, retriable("app answered %d to bulk delivery: %.200s", code, rb)
}

// grpcAppDeliverer delivers to a gRPC app through AppCallback.
type grpcAppDeliverer struct{ g grpcApp }

// topicEvent builds the TopicEventRequest of a delivery.
func topicEvent(d *delivery) (*runtimev1.TopicEventRequest, error) {
	data, err := cloudevent.Data(d.ce)
	if err != nil {
		return nil, retriable("%w", err)
	}
	ext, err := extensions(d.ce)
	if err != nil {
		return nil, retriable("%w", err)
	}
	return &runtimev1.TopicEventRequest{
		Id: cloudevent.String(d.ce, cloudevent.FieldID), Source: cloudevent.String(d.ce, cloudevent.FieldSource),
		Type: cloudevent.String(d.ce, cloudevent.FieldType), SpecVersion: cloudevent.String(d.ce, cloudevent.FieldSpecVersion),
		DataContentType: cloudevent.String(d.ce, cloudevent.FieldDataContentType),
		Data:            data, Topic: d.topic, PubsubName: d.pubsub, Path: d.path, Extensions: ext,
	}, nil
}

// extensions are the event's attributes other than those TopicEventRequest
// carries in its own fields.
func extensions(ce map[string]any) (*structpb.Struct, error) {
	m := make(map[string]any, len(ce))
	for k, v := range ce {
		switch k {
		case cloudevent.FieldID, cloudevent.FieldSource, cloudevent.FieldDataContentType, cloudevent.FieldType,
			cloudevent.FieldSpecVersion, cloudevent.FieldData, cloudevent.FieldDataBase64:
			continue
		}
		m[k] = v
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("cloud event extensions: %w", err)
	}
	return s, nil
}

// outgoing adds the broker metadata (valid keys), trace context and app
// token to ctx.
func (g grpcAppDeliverer) outgoing(ctx context.Context, md map[string]string, ce map[string]any) context.Context {
	out := metadata.MD{}
	for k, v := range md {
		lk := strings.ToLower(k)
		if httpguts.ValidHeaderFieldName(lk) && httpguts.ValidHeaderFieldValue(v) && !strings.HasPrefix(lk, "grpc-") && !strings.HasSuffix(lk, "-bin") {
			out.Set(lk, v)
		}
	}
	if ce != nil {
		if tp := cloudevent.String(ce, cloudevent.FieldTraceParent); tp != "" {
			out.Set("traceparent", tp)
			if ts := cloudevent.String(ce, cloudevent.FieldTraceState); ts != "" {
				out.Set("tracestate", ts)
			}
		}
	}
	return outgoingContext(g.g, ctx, out)
}

func (g grpcAppDeliverer) deliver(ctx context.Context, d *delivery) (outcome, error) {
	req, err := topicEvent(d)
	if err != nil {
		return 0, err
	}
	resp, err := runtimev1.NewAppCallbackClient(g.g.Conn()).OnTopicEvent(g.outgoing(ctx, d.metadata, d.ce), req)
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return outIgnore, nil
		}
		return 0, retriable("OnTopicEvent: %w", err)
	}
	return topicStatus(resp.GetStatus())
}

// topicStatus maps an app's TopicEventResponse status.
func topicStatus(s runtimev1.TopicEventResponse_TopicEventResponseStatus) (outcome, error) {
	switch s {
	case runtimev1.TopicEventResponse_SUCCESS:
		return outSuccess, nil
	case runtimev1.TopicEventResponse_DROP:
		return outDrop, nil
	case runtimev1.TopicEventResponse_RETRY:
		return 0, retriable("app asked to RETRY")
	}
	return 0, retriable("app answered unknown status %v", s)
}

func (g grpcAppDeliverer) deliverBulk(ctx context.Context, b *bulkDelivery) (map[string]outcome, error) {
	req := &runtimev1.TopicEventBulkRequest{Id: uuid.NewString(), Metadata: map[string]string{"pubsubName": b.pubsub},
		Topic: b.topic, PubsubName: b.pubsub, Type: cloudevent.DefaultType, Path: b.path}
	for _, e := range b.entries {
		re := &runtimev1.TopicEventBulkRequestEntry{EntryId: e.id, ContentType: e.msg.GetContentType(), Metadata: e.msg.GetMetadata()}
		if b.raw {
			re.Event = &runtimev1.TopicEventBulkRequestEntry_Bytes{Bytes: e.msg.GetData()}
		} else {
			te, err := topicEvent(&delivery{ce: e.ce, pubsub: b.pubsub, topic: b.topic, path: b.path})
			if err != nil {
				return nil, err
			}
			re.Event = &runtimev1.TopicEventBulkRequestEntry_CloudEvent{CloudEvent: &runtimev1.TopicEventCERequest{
				Id: te.Id, Source: te.Source, Type: te.Type, SpecVersion: te.SpecVersion,
				DataContentType: te.DataContentType, Data: te.Data, Extensions: te.Extensions,
			}}
		}
		req.Entries = append(req.Entries, re)
	}
	resp, err := runtimev1.NewAppCallbackAlphaClient(g.g.Conn()).OnBulkTopicEventAlpha1(g.outgoing(ctx, nil, nil), req)
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			out := map[string]outcome{}
			for _, e := range b.entries {
				out[e.id] = outIgnore
			}
			return out, nil
		}
		return nil, retriable("OnBulkTopicEventAlpha1: %w", err)
	}
	out := map[string]outcome{}
	for _, s := range resp.GetStatuses() {
		if o, err := topicStatus(s.GetStatus()); err == nil {
			out[s.GetEntryId()] = o
		}
	}
	return out, nil
}

// perEntry turns a single-message deliverer into a bulk one, for streaming
// subscribers (which have no bulk form).
func perEntry(ctx context.Context, d deliverer, b *bulkDelivery) (map[string]outcome, error) {
	out := map[string]outcome{}
	var firstErr error
	for _, e := range b.entries {
		o, err := d.deliver(ctx, &delivery{ce: e.ce, data: e.data, pubsub: b.pubsub, topic: b.topic, path: b.path, metadata: e.msg.GetMetadata()})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out[e.id] = o
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}
