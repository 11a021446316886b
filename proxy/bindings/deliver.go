package bindings

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/grpc/metadata"

	"github.com/outrigger/outrigger/proxy/appchannel"
)

// maxAppAnswer bounds how much of an app's answer is read.
const maxAppAnswer = 4 << 20

// deliverer hands input binding events to the app.
type deliverer interface {
	deliver(ctx context.Context, binding, route string, ev *componentsv1.ReadResponse) (answer, error)
}

// answer is the app's reply to an event: the raw body (returned to the
// plugin) and, when it asks for any, the state to save and bindings to
// forward to.
type answer struct {
	body []byte
	act  *appAction
}

// appAction is the optional part of an app's answer (Dapr's AppResponse).
type appAction struct {
	StoreName   string
	State       []*commonv1.StateItem
	To          []string
	Data        []byte // JSON forwarded to the To bindings
	Parallel    bool
	stateIgnore string // why State could not be read, for the log
}

type httpDeliverer struct{ ch AppChannel }

// eventHeaders are the event metadata as HTTP headers (valid ones only),
// with the JSON content type.
func eventHeaders(md map[string]string) http.Header {
	h := http.Header{}
	for k, v := range md {
		if httpguts.ValidHeaderFieldName(k) && httpguts.ValidHeaderFieldValue(v) {
			h.Set(k, v)
		}
	}
	h.Set("Content-Type", "application/json")
	return h
}

func (d httpDeliverer) deliver(ctx context.Context, _ string, route string, ev *componentsv1.ReadResponse) (answer, error) {
	resp, err := d.ch.Invoke(ctx, &appchannel.Request{Method: route, Verb: http.MethodPost, Header: eventHeaders(ev.GetMetadata()),
		Body: bytes.NewReader(ev.GetData()), ContentLength: int64(len(ev.GetData()))})
	if err != nil {
		return answer{}, fmt.Errorf("error invoking app: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAppAnswer))
	if resp.Status < 200 || resp.Status > 299 {
		return answer{}, fmt.Errorf("fails to send binding event to http app channel, status code: %d body: %s", resp.Status, truncate(body, 256))
	}
	if err != nil {
		return answer{}, fmt.Errorf("failed to read response body: %w", err)
	}
	return answer{body: body, act: parseHTTPAnswer(body)}, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// httpAnswer is the JSON an HTTP app may answer with.
type httpAnswer struct {
	StoreName   string          `json:"storeName"`
	State       []httpStateItem `json:"state"`
	To          []string        `json:"to"`
	Data        json.RawMessage `json:"data"`
	Concurrency string          `json:"concurrency"`
}

type httpStateItem struct {
	Key      string            `json:"key"`
	Value    json.RawMessage   `json:"value"`
	ETag     *string           `json:"etag"`
	Metadata map[string]string `json:"metadata"`
	Options  *struct {
		Concurrency string `json:"concurrency"`
		Consistency string `json:"consistency"`
	} `json:"options"`
}

// parseHTTPAnswer reads the optional {storeName, state, to, data,
// concurrency} answer; anything else (not JSON, no state, no to) is nil.
func parseHTTPAnswer(body []byte) *appAction {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var ha httpAnswer
	if err := json.Unmarshal(b, &ha); err != nil {
		return nil
	}
	if len(ha.State) == 0 && len(ha.To) == 0 {
		return nil
	}
	act := &appAction{StoreName: ha.StoreName, To: ha.To, Parallel: strings.EqualFold(ha.Concurrency, "parallel")}
	act.Data = []byte("null")
	if len(ha.Data) > 0 {
		act.Data = ha.Data
	}
	for _, s := range ha.State {
		if s.Key == "" {
			act.stateIgnore = "a state item without a key"
			act.State = nil
			break
		}
		it := &commonv1.StateItem{Key: s.Key, Value: s.Value, Metadata: s.Metadata}
		if len(s.Value) == 0 {
			it.Value = []byte("null")
		}
		if s.ETag != nil {
			it.Etag = &commonv1.Etag{Value: *s.ETag}
		}
		if s.Options != nil {
			it.Options = &commonv1.StateOptions{Concurrency: concurrency(s.Options.Concurrency), Consistency: consistency(s.Options.Consistency)}
		}
		act.State = append(act.State, it)
	}
	return act
}

func concurrency(s string) commonv1.StateOptions_StateConcurrency {
	switch strings.ToLower(s) {
	case "first-write":
		return commonv1.StateOptions_CONCURRENCY_FIRST_WRITE
	case "last-write":
		return commonv1.StateOptions_CONCURRENCY_LAST_WRITE
	}
	return commonv1.StateOptions_CONCURRENCY_UNSPECIFIED
}

func consistency(s string) commonv1.StateOptions_StateConsistency {
	switch strings.ToLower(s) {
	case "eventual":
		return commonv1.StateOptions_CONSISTENCY_EVENTUAL
	case "strong":
		return commonv1.StateOptions_CONSISTENCY_STRONG
	}
	return commonv1.StateOptions_CONSISTENCY_UNSPECIFIED
}

type grpcDeliverer struct{ g grpcApp }

func (d grpcDeliverer) deliver(ctx context.Context, binding, _ string, ev *componentsv1.ReadResponse) (answer, error) {
	md := metadata.MD{}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v, ok := ev.GetMetadata()[k]; ok && httpguts.ValidHeaderFieldValue(v) {
			md.Set(k, v)
		}
	}
	resp, err := runtimev1.NewAppCallbackClient(d.g.Conn()).OnBindingEvent(outgoing(d.g, ctx, md),
		&runtimev1.BindingEventRequest{Name: binding, Data: ev.GetData(), Metadata: ev.GetMetadata()})
	if err != nil {
		return answer{}, fmt.Errorf("error invoking app: %w", err)
	}
	ans := answer{body: resp.GetData()}
	if len(resp.GetStates()) > 0 || len(resp.GetTo()) > 0 {
		act := &appAction{StoreName: resp.GetStoreName(), State: resp.GetStates(), To: resp.GetTo(),
			Parallel: resp.GetConcurrency() == runtimev1.BindingEventResponse_PARALLEL, Data: []byte("null")}
		// As Dapr: data that is JSON is forwarded as such; other bytes as null.
		if json.Valid(resp.GetData()) {
			act.Data = resp.GetData()
		}
		ans.act = act
	}
	return ans, nil
}

// onAppAnswer saves the state and forwards the data an app's answer asks
// for. Failures are logged: the event itself was accepted by the app.
func (a *API) onAppAnswer(ctx context.Context, binding string, act *appAction) {
	log := a.log.With("binding", binding)
	if act.stateIgnore != "" {
		log.Error("state in the app's answer not saved", "reason", act.stateIgnore)
	}
	if len(act.State) > 0 {
		switch {
		case a.state == nil:
			log.Error("state in the app's answer not saved: no state building block")
		default:
			if _, err := a.state.SaveState(ctx, &runtimev1.SaveStateRequest{StoreName: act.StoreName, States: act.State}); err != nil {
				log.Error("error saving state from app response", "store", act.StoreName, "err", err)
			}
		}
	}
	if len(act.To) == 0 {
		return
	}
	send := func(ctx context.Context, to string) error {
		_, err := a.invokeRaw(ctx, to, &componentsv1.InvokeRequest{Data: act.Data, Operation: "create", Metadata: map[string]string{}})
		if err != nil {
			return fmt.Errorf("forwarding to output binding %s: %w", to, err)
		}
		return nil
	}
	if act.Parallel {
		for _, to := range act.To {
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				if err := send(context.WithoutCancel(ctx), to); err != nil {
					log.Error("error executing app response", "err", err)
				}
			}()
		}
		return
	}
	for _, to := range act.To {
		if err := send(ctx, to); err != nil {
			log.Error("error executing app response", "err", err)
			return
		}
	}
}
