package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"

	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/pubsub/cloudevent"
)

// event is one event to publish, before its envelope is built.
type event struct {
	EntryID     string // bulk only
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// trace is the W3C trace context of the publishing request.
type trace struct{ parent, state string }

// prepared is an event ready for the broker.
type prepared struct {
	entryID     string
	data        []byte
	contentType string
	metadata    map[string]string
}

// checkPublish resolves the broker and checks the request metadata and
// publishing scopes. It returns whether the request is a raw payload.
func (a *API) checkPublish(name, topic string, md map[string]string) (Broker, bool, error) {
	b, err := a.resolve(name, topic)
	if err != nil {
		return Broker{}, false, err
	}
	raw, err := cloudevent.RawPayload(md)
	if err != nil {
		return Broker{}, false, errs.PubsubRequestMetadata.New(err.Error())
	}
	if _, _, err := cloudevent.TTL(md); err != nil {
		return Broker{}, false, errs.PubsubRequestMetadata.New(err.Error())
	}
	if !scopesOf(b.Properties, a.appID).canPublish(topic) {
		return Broker{}, false, errs.PubsubForbidden.New(topic, a.appID)
	}
	return b, raw, nil
}

// prepare wraps ev in its CloudEvent envelope unless raw.
func (a *API) prepare(b Broker, topic string, ev event, raw bool, tr trace) (prepared, error) {
	if raw {
		return prepared{entryID: ev.EntryID, data: ev.Data, contentType: ev.ContentType, metadata: ev.Metadata}, nil
	}
	if _, _, err := cloudevent.TTL(ev.Metadata); err != nil {
		return prepared{}, errs.PubsubRequestMetadata.New(err.Error())
	}
	ce, err := cloudevent.New(cloudevent.Input{
		Data: ev.Data, ContentType: ev.ContentType, Source: a.appID, Topic: topic, Pubsub: b.Name,
		TraceParent: tr.parent, TraceState: tr.state, Metadata: ev.Metadata,
		BrokerTTL: b.HasFeature(FeatureMessageTTL),
	})
	if err != nil {
		return prepared{}, errs.PubsubCloudEventsSer.New(topic, b.Name, err.Error())
	}
	data, err := json.Marshal(ce)
	if err != nil {
		return prepared{}, errs.PubsubCloudEventsSer.New(topic, b.Name, err.Error())
	}
	return prepared{entryID: ev.EntryID, data: data, contentType: cloudevent.ContentType, metadata: ev.Metadata}, nil
}

// publish publishes one event; errors are errs rows.
func (a *API) publish(ctx context.Context, name, topic string, ev event, tr trace) error {
	b, raw, err := a.checkPublish(name, topic, ev.Metadata)
	if err != nil {
		return err
	}
	p, err := a.prepare(b, topic, ev, raw, tr)
	if err != nil {
		return err
	}
	if err := a.send(ctx, b, topic, p); err != nil {
		return errs.PubsubPublishMessage.New(topic, b.Name, err.Error())
	}
	return nil
}

// send publishes one prepared message to the broker.
func (a *API) send(ctx context.Context, b Broker, topic string, p prepared) error {
	_, err := componentsv1.NewPubSubClient(b.Conn).Publish(ctx, &componentsv1.PublishRequest{
		Data: p.data, PubsubName: b.Name, Topic: topic, Metadata: p.metadata, ContentType: p.contentType,
	})
	return err
}

// failedEntry is one bulk entry the broker did not take.
type failedEntry struct {
	EntryID string `json:"entryId"`
	Error   string `json:"error"`
}

// bulkPublish publishes events (entry metadata already merged over the
// request's). It returns the entries that failed; err is a request-level
// errs row (nothing was published).
func (a *API) bulkPublish(ctx context.Context, name, topic string, md map[string]string, evs []event, tr trace) ([]failedEntry, error) {
	b, raw, err := a.checkPublish(name, topic, md)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(evs))
	ps := make([]prepared, len(evs))
	for i, ev := range evs {
		if ev.EntryID == "" || seen[ev.EntryID] {
			return nil, errs.PubsubEventsSer.New(topic, b.Name, "entryId is duplicated or not present for entry")
		}
		seen[ev.EntryID] = true
		if ps[i], err = a.prepare(b, topic, ev, raw, tr); err != nil {
			return nil, err
		}
	}
	if len(ps) == 0 {
		return nil, nil
	}
	if b.HasFeature(FeatureBulkPublish) {
		return a.sendBulk(ctx, b, topic, md, ps), nil
	}
	return a.sendEach(ctx, b, topic, ps), nil
}

// sendBulk uses the plugin's BulkPublish. A call that fails as a whole fails
// every entry.
func (a *API) sendBulk(ctx context.Context, b Broker, topic string, md map[string]string, ps []prepared) []failedEntry {
	req := &componentsv1.BulkPublishRequest{PubsubName: b.Name, Topic: topic, Metadata: md,
		Entries: make([]*componentsv1.BulkMessageEntry, len(ps))}
	for i, p := range ps {
		req.Entries[i] = &componentsv1.BulkMessageEntry{EntryId: p.entryID, Event: p.data, ContentType: p.contentType, Metadata: p.metadata}
	}
	resp, err := componentsv1.NewPubSubClient(b.Conn).BulkPublish(ctx, req)
	if err != nil {
		out := make([]failedEntry, len(ps))
		for i, p := range ps {
			out[i] = failedEntry{EntryID: p.entryID, Error: err.Error()}
		}
		return out
	}
	var out []failedEntry
	for _, f := range resp.GetFailedEntries() {
		out = append(out, failedEntry{EntryID: f.GetEntryId(), Error: f.GetError()})
	}
	return out
}

// bulkPublishConcurrency caps concurrent Publish calls of one bulk request on
// a broker without BulkPublish.
const bulkPublishConcurrency = 16

// sendEach publishes entry by entry, concurrently, keeping request order in
// the failure list.
func (a *API) sendEach(ctx context.Context, b Broker, topic string, ps []prepared) []failedEntry {
	errsByEntry := make([]error, len(ps))
	sem := make(chan struct{}, bulkPublishConcurrency)
	var wg sync.WaitGroup
	for i := range ps {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errsByEntry[i] = a.send(ctx, b, topic, ps[i])
		}()
	}
	wg.Wait()
	var out []failedEntry
	for i, err := range errsByEntry {
		if err != nil {
			out = append(out, failedEntry{EntryID: ps[i].entryID, Error: err.Error()})
		}
	}
	return out
}

// mergeMetadata overlays entry metadata on the request's (entry wins).
func mergeMetadata(req, entry map[string]string) map[string]string {
	if len(entry) == 0 {
		return req
	}
	out := make(map[string]string, len(req)+len(entry))
	for k, v := range req {
		out[k] = v
	}
	for k, v := range entry {
		out[k] = v
	}
	return out
}

// failedSummary describes bulk failures in one line.
func failedSummary(fs []failedEntry) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s: %s", f.EntryID, f.Error))
	}
	return strings.Join(parts, "; ")
}

var errContentTypeMismatch = errors.New("the content type does not match the event")
