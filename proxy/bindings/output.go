package bindings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"golang.org/x/net/http/httpguts"

	"github.com/outrigger/outrigger/proxy/errs"
	"github.com/outrigger/outrigger/proxy/telemetry"
)

const metadataPrefix = "metadata."

// pluginMessage is the text to report for a plugin error: the status
// message (for Unavailable, the host's message naming the plugin).
func pluginMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// outputBinding finds name as an output binding.
func (a *API) outputBinding(name string) (Binding, error) {
	b, ok := a.lookup(name)
	if !ok || !b.Output {
		return Binding{}, fmt.Errorf("couldn't find output binding %s", name)
	}
	if _, out, set := directions(b.Properties); set && !out {
		return Binding{}, fmt.Errorf("couldn't find output binding %s", name)
	}
	return b, nil
}

// operations returns the binding's operations, asking the plugin once.
func (a *API) operations(ctx context.Context, b Binding) ([]string, error) {
	if v, ok := a.ops.Load(b.Name); ok {
		return v.([]string), nil
	}
	resp, err := componentsv1.NewOutputBindingClient(b.Conn).ListOperations(ctx, &componentsv1.ListOperationsRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing the operations of binding %s: %s", b.Name, pluginMessage(err))
	}
	ops := resp.GetOperations()
	a.ops.Store(b.Name, ops)
	return ops, nil
}

// invoke calls an output binding. Every failure is ERR_INVOKE_OUTPUT_BINDING.
func (a *API) invoke(ctx context.Context, name string, req *componentsv1.InvokeRequest) (*componentsv1.InvokeResponse, error) {
	resp, err := a.invokeRaw(ctx, name, req)
	if err != nil {
		return nil, errs.InvokeOutputBinding.New(name, err.Error())
	}
	return resp, nil
}

func (a *API) invokeRaw(ctx context.Context, name string, req *componentsv1.InvokeRequest) (*componentsv1.InvokeResponse, error) {
	if req.GetOperation() == "" {
		return nil, errors.New("operation field is missing from request")
	}
	b, err := a.outputBinding(name)
	if err != nil {
		return nil, err
	}
	ops, err := a.operations(ctx, b)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(ops, req.GetOperation()) {
		return nil, fmt.Errorf("binding %s does not support operation %s. supported operations:%s", name, req.GetOperation(), strings.Join(ops, " "))
	}
	resp, err := componentsv1.NewOutputBindingClient(b.Conn).Invoke(ctx, req)
	if err != nil {
		return nil, errors.New(pluginMessage(err))
	}
	return resp, nil
}

// withTrace adds the caller's trace context to md (the span in ctx, else
// the incoming traceparent/tracestate), unless md already carries one.
func withTrace(ctx context.Context, md map[string]string, parent, state string) map[string]string {
	if md == nil {
		md = map[string]string{}
	}
	if tp := telemetry.Traceparent(ctx); tp != "" {
		parent, state = tp, telemetry.Tracestate(ctx)
	}
	if _, ok := md["traceparent"]; !ok && parent != "" {
		md["traceparent"] = parent
	}
	if _, ok := md["tracestate"]; !ok && state != "" {
		md["tracestate"] = state
	}
	return md
}

// RegisterHTTP adds the output binding routes (Dapr 1.14) to mux.
func (a *API) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1.0/bindings/{name}", a.httpInvoke)
	mux.HandleFunc("PUT /v1.0/bindings/{name}", a.httpInvoke)
}

// httpRequest is the body of POST /v1.0/bindings/{name}.
type httpRequest struct {
	Data      json.RawMessage   `json:"data"`
	Metadata  map[string]string `json:"metadata"`
	Operation string            `json:"operation"`
}

// POST|PUT /v1.0/bindings/{name}: 200 with the binding's data (JSON content
// type) and metadata.<k> headers; 204 when the binding answered no data.
func (a *API) httpInvoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			a.fail(w, r, errs.BodyTooLarge.New(mbe.Limit))
			return
		}
		a.fail(w, r, errs.BodyRead.New(err.Error()))
		return
	}
	var req httpRequest
	if err := json.Unmarshal(body, &req); err != nil {
		a.fail(w, r, errs.MalformedRequest.New(err.Error()))
		return
	}
	// As Dapr: data is the JSON text of the "data" field, so a JSON string
	// reaches the binding with its quotes and a missing one as null.
	data, err := json.Marshal(req.Data)
	if len(req.Data) == 0 {
		data, err = []byte("null"), nil
	}
	if err != nil {
		a.fail(w, r, errs.MalformedRequest.New(err.Error()))
		return
	}
	md := withTrace(r.Context(), req.Metadata, r.Header.Get("traceparent"), r.Header.Get("tracestate"))
	resp, err := a.invoke(r.Context(), name, &componentsv1.InvokeRequest{Data: data, Metadata: md, Operation: req.Operation})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for k, v := range resp.GetMetadata() {
		w.Header().Add(metadataPrefix+k, v)
	}
	if len(resp.GetData()) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.GetData())
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Debug("bindings request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	errs.WriteHTTP(w, err)
}

// reservedGRPCKey renames gRPC's reserved metadata keys as Dapr does before
// handing them to a binding (":authority" → "dapr-authority", "grpc-x" →
// "dapr-grpc-x").
func reservedGRPCKey(k string) string {
	switch k {
	case ":method", ":scheme", ":path", ":authority":
		return "dapr-" + k[1:]
	}
	if strings.HasPrefix(k, "grpc-") {
		return "dapr-" + k
	}
	return k
}

// InvokeBinding calls an output binding (runtimev1.DaprServer). As in Dapr,
// the caller's gRPC metadata (except the API token) is passed on in the
// request metadata, and the binding's response metadata is also sent as
// metadata.<k> gRPC headers.
func (a *API) InvokeBinding(ctx context.Context, in *runtimev1.InvokeBindingRequest) (*runtimev1.InvokeBindingResponse, error) {
	md := make(map[string]string, len(in.GetMetadata())+4)
	for k, v := range in.GetMetadata() {
		md[k] = v
	}
	inMD, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := inMD.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	md = withTrace(ctx, md, first("traceparent"), first("tracestate"))
	for k, vs := range inMD {
		if len(vs) == 0 || k == "dapr-api-token" || k == "x-component-instance" {
			continue
		}
		md[reservedGRPCKey(k)] = vs[0]
	}
	resp, err := a.invoke(ctx, in.GetName(), &componentsv1.InvokeRequest{Data: in.GetData(), Metadata: md, Operation: in.GetOperation()})
	if err != nil {
		a.log.Debug("InvokeBinding failed", "binding", in.GetName(), "err", err)
		return nil, errs.GRPC(err)
	}
	if len(resp.GetMetadata()) > 0 {
		hdr := metadata.MD{}
		for k, v := range resp.GetMetadata() {
			key := strings.ToLower(metadataPrefix + k)
			if httpguts.ValidHeaderFieldName(key) && httpguts.ValidHeaderFieldValue(v) && !strings.HasSuffix(key, "-bin") {
				hdr.Append(key, v)
			}
		}
		// Fails only outside a server call (a direct call in tests).
		_ = grpc.SetHeader(ctx, hdr)
	}
	return &runtimev1.InvokeBindingResponse{Data: resp.GetData(), Metadata: resp.GetMetadata()}, nil
}
