package configuration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/errs"
)

// RegisterHTTP adds the configuration routes (Dapr 1.14: the same handlers
// under v1.0 and v1.0-alpha1) to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	for _, v := range []string{"v1.0", "v1.0-alpha1"} {
		mux.HandleFunc("GET /"+v+"/configuration/{storeName}", a.httpGet)
		mux.HandleFunc("GET /"+v+"/configuration/{storeName}/subscribe", a.httpSubscribe)
		mux.HandleFunc("GET /"+v+"/configuration/{storeName}/{id}/unsubscribe", a.httpUnsubscribe)
	}
}

const metadataPrefix = "metadata."

// query returns the key=… values and the metadata.<k>=<v> parameters.
func query(r *http.Request) (keys []string, md map[string]string) {
	q := r.URL.Query()
	keys = q["key"]
	if keys == nil {
		keys = []string{}
	}
	md = map[string]string{}
	for k, vs := range q {
		if name, ok := strings.CutPrefix(k, metadataPrefix); ok && len(vs) > 0 {
			md[name] = vs[0]
		}
	}
	return keys, md
}

// item is the JSON shape of one configuration item (Dapr's
// configuration.Item).
type item struct {
	Value    string            `json:"value,omitempty"`
	Version  string            `json:"version,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func toJSONItems(items map[string]*ocomponentsv1.ConfigurationItem) map[string]item {
	out := make(map[string]item, len(items))
	for k, v := range items {
		out[k] = item{Value: v.GetValue(), Version: v.GetVersion(), Metadata: v.GetMetadata()}
	}
	return out
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Debug("configuration request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	errs.WriteHTTP(w, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// GET /v1.0/configuration/{storeName}?key=a&key=b&metadata.x=y
func (a *API) httpGet(w http.ResponseWriter, r *http.Request) {
	s, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	keys, md := query(r)
	items, err := a.get(r.Context(), s, keys, md)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(items) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, toJSONItems(items))
}

// GET /v1.0/configuration/{storeName}/subscribe?key=a
func (a *API) httpSubscribe(w http.ResponseWriter, r *http.Request) {
	s, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.app == nil {
		a.fail(w, r, errs.ConfigurationAppChannelNil.New())
		return
	}
	keys, md := query(r)
	ctx, cancel := context.WithCancel(a.ctx)
	// Stop waiting for the plugin if the caller gives up.
	stop := context.AfterFunc(r.Context(), cancel)
	ps, err := open(ctx, s, keys, md)
	if !stop() || err != nil {
		cancel()
		if err == nil {
			err = r.Context().Err()
		}
		a.fail(w, r, errs.ConfigurationSubscribe.New(keys, s.Name, pluginMessage(err)))
		return
	}
	sub := a.add(s.Name, cancel)
	a.wg.Add(1)
	go a.push(ctx, sub, s, keys, md, ps)
	writeJSON(w, http.StatusOK, map[string]string{"id": sub.id})
}

// GET /v1.0/configuration/{storeName}/{id}/unsubscribe
func (a *API) httpUnsubscribe(w http.ResponseWriter, r *http.Request) {
	s, err := a.resolve(r.PathValue("storeName"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := a.unsubscribe(id, s.Name); err != nil {
		msg := errs.ConfigurationUnsubscribe.New(id, err.Error())
		a.log.Debug("configuration unsubscribe failed", "err", msg)
		// Dapr's one error answer in its own shape.
		writeJSON(w, http.StatusInternalServerError, map[string]any{"ok": false, "message": msg.Message})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// Backoff between attempts to re-open a broken plugin subscription.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// push delivers a subscription's changes to the app until ctx ends,
// re-opening the plugin stream (with backoff) when it breaks.
func (a *API) push(ctx context.Context, sub *subscription, s Store, keys []string, md map[string]string, ps pluginStream) {
	defer a.wg.Done()
	defer a.remove(sub.id)
	log := a.log.With("store", s.Name, "subscription", sub.id)
	backoff := minBackoff
	for {
		m, err := ps.Recv()
		if err == nil {
			backoff = minBackoff
			if len(m.GetItems()) > 0 {
				a.deliver(ctx, log, sub, s.Name, m.GetItems())
			}
			continue
		}
		for {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the store ended the subscription")
			}
			log.Warn("configuration subscription broken; re-subscribing", "err", pluginMessage(err), "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			if ps, err = open(ctx, s, keys, md); err == nil {
				log.Info("configuration subscription re-established")
				break
			}
		}
	}
}

// deliver posts an update to the app once per changed key, as Dapr does:
// POST /configuration/{store}/{key} with {"id", "items"}; the app must
// answer 200.
func (a *API) deliver(ctx context.Context, log *slog.Logger, sub *subscription, store string, items map[string]*ocomponentsv1.ConfigurationItem) {
	body, _ := json.Marshal(struct {
		ID    string          `json:"id"`
		Items map[string]item `json:"items"`
	}{sub.id, toJSONItems(items)})
	for key := range items {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		resp, err := a.app.Invoke(ctx, &appchannel.Request{
			Method: "configuration/" + url.PathEscape(store) + "/" + url.PathEscape(key),
			Verb:   http.MethodPost, Header: h, Body: bytes.NewReader(body), ContentLength: int64(len(body)),
		})
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("sending a configuration update to the app", "key", key, "err", err)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.Status != http.StatusOK {
			log.Warn("sending a configuration update to the app", "key", key, "status", resp.Status)
		}
	}
}
