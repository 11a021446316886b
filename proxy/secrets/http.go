package secrets

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/outrigger/outrigger/proxy/errs"
)

// RegisterHTTP adds the secrets routes (Dapr 1.14) to mux. A secret named
// "bulk" cannot be read over HTTP, as in Dapr.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1.0/secrets/{secretStoreName}/bulk", a.httpBulk)
	mux.HandleFunc("GET /v1.0/secrets/{secretStoreName}/{key}", a.httpGet)
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

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Debug("secrets request failed", "path", r.URL.Path, "err", err)
	errs.WriteHTTP(w, err)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		errs.WriteHTTP(w, errs.Internal.New(err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// GET /v1.0/secrets/{secretStoreName}/{key}: 200 {"k":"v",…}; 204 when the
// store answers no values.
func (a *API) httpGet(w http.ResponseWriter, r *http.Request) {
	data, err := a.get(r.Context(), r.PathValue("secretStoreName"), r.PathValue("key"), queryMetadata(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(data) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, data)
}

// GET /v1.0/secrets/{secretStoreName}/bulk: 200 {"name":{"k":"v"},…}.
func (a *API) httpBulk(w http.ResponseWriter, r *http.Request) {
	all, err := a.bulk(r.Context(), r.PathValue("secretStoreName"), queryMetadata(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, all)
}
