package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/invoke"
	"github.com/outrigger/outrigger/proxy/metadata"
)

// RouteRegistrar is a building block that serves HTTP routes.
type RouteRegistrar interface {
	RegisterHTTP(mux *http.ServeMux)
}

// Health is the sidecar's readiness.
type Health struct {
	Outbound atomic.Bool // API servers and components are up
	Ready    atomic.Bool // and the app channel is ready
}

// Config configures the Router.
type Config struct {
	AppID       string
	Invoke      *invoke.Service
	Metadata    *metadata.Store
	Health      *Health
	Shutdown    func() // called after POST /v1.0/shutdown is answered
	MaxBodySize int64  // limit for non-invoke request bodies (invocation streams)
	Blocks      []RouteRegistrar
	Logger      *slog.Logger
}

// Router is the terminal HTTP handler.
type Router struct {
	cfg Config
	mux *http.ServeMux
}

const invokePrefix = "/v1.0/invoke/"

// New builds the router.
func New(cfg Config) *Router {
	rt := &Router{cfg: cfg, mux: http.NewServeMux()}
	m := rt.mux
	m.HandleFunc("GET /v1.0/healthz", rt.healthz)
	m.HandleFunc("GET /v1.0/healthz/outbound", rt.healthzOutbound)
	m.HandleFunc("GET /v1.0/metadata", rt.getMetadata)
	m.HandleFunc("PUT /v1.0/metadata/{key}", rt.putMetadata)
	m.HandleFunc("POST /v1.0/shutdown", rt.shutdown)
	for _, b := range cfg.Blocks {
		b.RegisterHTTP(m)
	}
	m.HandleFunc("/", rt.fallback)
	return rt
}

// ServeHTTP dispatches: invocation on the fast path, the rest through the mux.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, invokePrefix) {
		rt.invokeRoute(w, r)
		return
	}
	if rt.cfg.MaxBodySize > 0 && !isInvocation(r) {
		r.Body = http.MaxBytesReader(w, r.Body, rt.cfg.MaxBodySize)
	}
	rt.mux.ServeHTTP(w, r)
}

// invokeRoute serves /v1.0/invoke/{app}/method/{method...}.
func (rt *Router) invokeRoute(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	rest := p[len(invokePrefix):]
	i := strings.Index(rest, "/method/")
	if i <= 0 {
		// /v1.0/invoke/{app}/method with no method, or no app id.
		if j := strings.Index(rest, "/"); j > 0 && rest[j:] == "/method" {
			rt.invoke(w, r, unescape(rest[:j]), "")
			return
		}
		errs.WriteHTTP(w, errs.DirectInvokeNoAppID.New())
		return
	}
	rt.invoke(w, r, unescape(rest[:i]), rest[i+len("/method/"):])
}

func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// fallback serves unmatched routes: invocation by dapr-app-id header or
// Basic-auth user, else 404 ERR_DIRECT_INVOKE.
func (rt *Router) fallback(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("dapr-app-id")
	if target == "" {
		if user, pass, ok := r.BasicAuth(); ok && user == "dapr-app-id" {
			target = pass
			r.Header.Del("Authorization")
		}
	}
	if target == "" {
		errs.WriteHTTP(w, errs.DirectInvokeNoAppID.New())
		return
	}
	method := path.Clean("/" + r.URL.EscapedPath())[1:]
	rt.invoke(w, r, target, method)
}

func (rt *Router) invoke(w http.ResponseWriter, r *http.Request, target, method string) {
	if target == "" {
		errs.WriteHTTP(w, errs.DirectInvokeNoAppID.New())
		return
	}
	cl := r.ContentLength
	if r.Body == nil || r.Body == http.NoBody {
		cl = 0
	}
	req := &appchannel.Request{Method: method, Verb: r.Method, Query: r.URL.RawQuery, Header: r.Header, Body: r.Body, ContentLength: cl}
	resp, err := rt.cfg.Invoke.Invoke(r.Context(), target, req, invoke.Caller{RemoteAddr: r.RemoteAddr, Host: r.Host})
	if err != nil {
		errs.WriteHTTP(w, err)
		return
	}
	defer resp.Body.Close()
	invoke.CopyResponseHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.Status)
	if r.Method == http.MethodHead {
		return
	}
	if err := relayBody(w, resp.Body); err != nil && !errors.Is(err, io.EOF) {
		rt.cfg.Logger.Debug("invocation response cut short", "app", target, "method", method, "err", err)
		panic(http.ErrAbortHandler) // tell the client the body is incomplete
	}
}

// isInvocation reports the header and Basic-auth forms of invocation, whose
// bodies stream and are not subject to --max-body-size.
func isInvocation(r *http.Request) bool {
	if r.Header.Get("dapr-app-id") != "" {
		return true
	}
	if r.Header.Get("Authorization") == "" {
		return false
	}
	user, _, ok := r.BasicAuth()
	return ok && user == "dapr-app-id"
}

var relayBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relayBody copies an answer to the client as it arrives: each read is
// flushed, so events an app flushes reach the caller at once.
func relayBody(w http.ResponseWriter, body io.Reader) error {
	if wt, ok := body.(io.WriterTo); ok {
		_, err := wt.WriteTo(w) // flushes per frame itself
		return err
	}
	f, _ := w.(http.Flusher)
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if f != nil && err == nil {
				f.Flush()
			}
		}
		if err != nil {
			return err
		}
	}
}

func (rt *Router) healthz(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("appid"); id != "" && id != rt.cfg.AppID {
		errs.WriteHTTP(w, errs.HealthAppIDNotMatch.New())
		return
	}
	if !rt.cfg.Health.Ready.Load() {
		errs.WriteHTTP(w, errs.HealthNotReady.New())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rt *Router) healthzOutbound(w http.ResponseWriter, _ *http.Request) {
	if !rt.cfg.Health.Outbound.Load() {
		errs.WriteHTTP(w, errs.OutboundHealthNotReady.New())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rt *Router) getMetadata(w http.ResponseWriter, _ *http.Request) {
	b, err := protojson.Marshal(rt.cfg.Metadata.Response())
	if err != nil {
		errs.WriteHTTP(w, errs.MetadataGet.New(err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (rt *Router) putMetadata(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		errs.WriteHTTP(w, errs.BodyRead.New(err.Error()))
		return
	}
	rt.cfg.Metadata.Set(r.PathValue("key"), string(b))
	w.WriteHeader(http.StatusNoContent)
}

func (rt *Router) shutdown(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
	if rt.cfg.Shutdown != nil {
		go rt.cfg.Shutdown()
	}
}
