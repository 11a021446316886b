package telemetry

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// pathLabeler turns a request path and verb into the bounded label values
// spec.metrics.http asks for, the way daprd 1.14 does:
//   - increasedCardinality (the default): the path itself, with the ids daprd
//     strips removed (state and secret keys, actor ids, workflow instance ids);
//   - otherwise "" (daprd's value), so paths never add series;
//   - a path matching a pathMatching pattern (http.ServeMux syntax, e.g.
//     "/orders/{id}") is recorded as the pattern, in both modes.
//
// excludeVerbs records "" for every method; unknown methods become "UNKNOWN".
type pathLabeler struct {
	legacy       bool
	excludeVerbs bool
	mux          *http.ServeMux // nil: no pathMatching
}

func newPathLabeler(patterns []string, legacy, excludeVerbs bool) (*pathLabeler, error) {
	p := &pathLabeler{legacy: legacy, excludeVerbs: excludeVerbs}
	if len(patterns) == 0 {
		return p, nil
	}
	patterns = slices.Compact(slices.Sorted(slices.Values(patterns)))
	mux := http.NewServeMux()
	for _, pat := range patterns {
		if err := register(mux, pat); err != nil {
			return nil, fmt.Errorf("spec.metrics.http.pathMatching %q: %w", pat, err)
		}
	}
	p.mux = mux
	return p, nil
}

// register adds one pattern; ServeMux panics on a bad or conflicting one.
func register(mux *http.ServeMux, pattern string) (err error) {
	if !strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("a path pattern must start with /")
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	mux.Handle(pattern, http.NotFoundHandler())
	return nil
}

func (p *pathLabeler) method(m string) string {
	if p.excludeVerbs {
		return ""
	}
	switch m {
	case "GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "UNKNOWN"
}

func (p *pathLabeler) path(path string) string {
	if !p.legacy && p.mux == nil {
		return ""
	}
	path = legacyPathLabel(path)
	if path == "" {
		return ""
	}
	switch path {
	case "/dapr/config", "/dapr/metrics", "/dapr/subscribe", "/healthz":
		return path
	}
	if p.mux != nil {
		_, pattern := p.mux.Handler(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}})
		if pattern != "" {
			return pattern
		}
	}
	if p.legacy {
		return path
	}
	return ""
}

// legacyPathLabel removes the variable parts daprd removes from API paths
// in its high-cardinality mode: /v1.0/state/store/key → /v1.0/state/store,
// /v1.0/secrets/store/name → /v1.0/secrets/store,
// /v1.0/actors/T/id/method/m → /v1.0/actors/T/{id}/method,
// workflow instance ids → {instanceId}, app-side actors/T/id/… → actors/T/{id}/….
func legacyPathLabel(path string) string {
	if path == "" {
		return path
	}
	p := strings.TrimPrefix(path, "/")
	parts := strings.SplitN(p, "/", 6)
	if len(parts) < 3 {
		return path
	}
	if parts[0] == "actors" {
		parts[2] = "{id}"
		return strings.Join(parts, "/")
	}
	switch parts[1] {
	case "state", "secrets":
		return "/" + strings.Join(parts[:3], "/")
	case "actors":
		if len(parts) < 5 {
			return path
		}
		parts[3] = "{id}"
		return "/" + strings.Join(parts[:5], "/")
	case "workflows":
		if len(parts) < 4 {
			return path
		}
		if len(parts) == 4 {
			parts[3] = "{instanceId}"
			return "/" + strings.Join(parts, "/")
		}
		if len(parts) == 5 && strings.HasPrefix(parts[4], "start") {
			return "/" + strings.Join(parts[:4], "/") + "/start"
		}
		parts[3] = "{instanceId}"
		if len(parts) == 6 && parts[4] == "raiseEvent" && parts[5] != "" {
			parts[5] = "{eventName}"
			return "/" + strings.Join(parts, "/")
		}
		return "/" + strings.Join(parts[:5], "/")
	}
	return path
}
