package pubsub

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/pubsub/cloudevent"
)

// RegisterHTTP adds the publish routes (Dapr 1.14) to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	for _, m := range []string{http.MethodPost, http.MethodPut} {
		mux.HandleFunc(m+" /v1.0/publish/{pubsub}/{topic...}", a.httpPublish)
		mux.HandleFunc(m+" /v1.0-alpha1/publish/bulk/{pubsub}/{topic...}", a.httpBulkPublish)
	}
}

const metadataPrefix = "metadata."

// queryMetadata collects the metadata.<k>=<v> query parameters.
func queryMetadata(r *http.Request) map[string]string {
	md := map[string]string{}
	if !strings.Contains(r.URL.RawQuery, metadataPrefix) {
		return md
	}
	for k, vs := range r.URL.Query() {
		if name, ok := strings.CutPrefix(k, metadataPrefix); ok && len(vs) > 0 {
			md[name] = vs[0]
		}
	}
	return md
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errs.BodyTooLarge.New(mbe.Limit)
		}
		return nil, errs.BodyRead.New(err.Error())
	}
	return b, nil
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Debug("pubsub request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	errs.WriteHTTP(w, err)
}

func httpTrace(r *http.Request) trace {
	return trace{parent: r.Header.Get("traceparent"), state: r.Header.Get("tracestate")}
}

// POST|PUT /v1.0/publish/{pubsub}/{topic...}
func (a *API) httpPublish(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ev := event{Data: body, ContentType: r.Header.Get("Content-Type"), Metadata: queryMetadata(r)}
	if err := a.publish(r.Context(), r.PathValue("pubsub"), r.PathValue("topic"), ev, httpTrace(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bulkEntry is one element of the HTTP bulk publish body.
type bulkEntry struct {
	EntryID     string            `json:"entryId"`
	Event       json.RawMessage   `json:"event"`
	ContentType string            `json:"contentType"`
	Metadata    map[string]string `json:"metadata"`
}

// POST|PUT /v1.0-alpha1/publish/bulk/{pubsub}/{topic...}
func (a *API) httpBulkPublish(w http.ResponseWriter, r *http.Request) {
	name, topic := r.PathValue("pubsub"), r.PathValue("topic")
	md := queryMetadata(r)
	if _, _, err := a.checkPublish(name, topic, md); err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var entries []bulkEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		a.fail(w, r, errs.PubsubEventsSer.New(topic, name, err.Error()))
		return
	}
	evs := make([]event, len(entries))
	for i, e := range entries {
		data, ct, err := eventBytes(e.Event, e.ContentType)
		if err != nil {
			a.fail(w, r, errs.PubsubEventsSer.New(topic, name, fmt.Sprintf("entry %q: %v", e.EntryID, err)))
			return
		}
		evs[i] = event{EntryID: e.EntryID, Data: data, ContentType: ct, Metadata: mergeMetadata(md, e.Metadata)}
	}
	failed, err := a.bulkPublish(r.Context(), name, topic, md, evs, httpTrace(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(failed) > 0 {
		a.log.Debug("bulk publish: entries failed", "pubsub", name, "topic", topic, "failed", failedSummary(failed))
		b, _ := json.Marshal(struct {
			FailedEntries []failedEntry `json:"failedEntries"`
			ErrorCode     string        `json:"errorCode"`
		}{failed, errs.PubsubPublishMessage.Code})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(errs.PubsubPublishMessage.HTTP)
		_, _ = w.Write(b)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// eventBytes turns a bulk entry's JSON event into the bytes to publish, as
// Dapr's ConvertEventToBytes: binary content types take a base64 string,
// string types a JSON string, JSON and CloudEvents types any JSON value. An
// empty content type (Dapr rejects it) is taken as text/plain for a JSON
// string and application/json otherwise.
func eventBytes(ev json.RawMessage, ct string) ([]byte, string, error) {
	if len(ev) == 0 {
		return nil, ct, errors.New(`"event" is missing`)
	}
	var s string
	isString := json.Unmarshal(ev, &s) == nil
	if ct == "" {
		ct = "application/json"
		if isString {
			ct = "text/plain"
		}
	}
	switch {
	case cloudevent.IsBinary(ct):
		if !isString {
			return nil, ct, errContentTypeMismatch
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, ct, fmt.Errorf("unable to decode base64 %s data: %w", ct, err)
		}
		return b, ct, nil
	case cloudevent.IsString(ct):
		if !isString {
			return nil, ct, errContentTypeMismatch
		}
		return []byte(s), ct, nil
	case cloudevent.IsJSON(ct) || cloudevent.IsCloudEvent(ct):
		return []byte(ev), ct, nil
	}
	return nil, ct, errContentTypeMismatch
}
