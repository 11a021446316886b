package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/google/cel-go/cel"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outrigger/outrigger/proxy/appchannel"
	"github.com/outrigger/outrigger/proxy/pubsub/cloudevent"
	"github.com/outrigger/outrigger/proxy/resources"
)

// rule is one routing rule; a nil prg always matches.
type rule struct {
	match string
	path  string
	prg   cel.Program
}

// bulkConfig is a subscription's bulkSubscribe.
type bulkConfig struct {
	enabled  bool
	maxCount int
	maxAwait time.Duration
}

// Dapr's bulk subscribe defaults.
const (
	defaultBulkMaxCount = 100
	defaultBulkMaxAwait = time.Second
)

// subscription is one subscribed topic, whatever its source.
type subscription struct {
	kind       runtimev1.PubsubSubscriptionType
	pubsub     string
	topic      string
	metadata   map[string]string
	rules      []rule // in order; the default route last, with no match
	deadLetter string
	bulk       bulkConfig
	raw        bool
	source     string // for messages: file:line, "GET /dapr/subscribe", …
}

func (s *subscription) key() string { return s.pubsub + "||" + s.topic }

// proto renders the subscription for /v1.0/metadata.
func (s *subscription) proto() *runtimev1.PubsubSubscription {
	p := &runtimev1.PubsubSubscription{
		PubsubName: s.pubsub, Topic: s.topic, Metadata: s.metadata, DeadLetterTopic: s.deadLetter, Type: s.kind,
		Rules: &runtimev1.PubsubSubscriptionRules{},
	}
	for _, r := range s.rules {
		p.Rules.Rules = append(p.Rules.Rules, &runtimev1.PubsubSubscriptionRule{Match: r.match, Path: r.path})
	}
	return p
}

// route picks the path for ce: the first rule that matches. ok is false when
// none does.
func (s *subscription) route(ce map[string]any) (path string, ok bool, err error) {
	for _, r := range s.rules {
		if r.prg == nil {
			return r.path, true, nil
		}
		out, _, err := r.prg.Eval(map[string]any{"event": ce})
		if err != nil {
			return "", false, fmt.Errorf("evaluate routing rule %q: %w", r.match, err)
		}
		b, isBool := out.Value().(bool)
		if !isBool {
			return "", false, fmt.Errorf("routing rule %q is not a boolean expression", r.match)
		}
		if b {
			return r.path, true, nil
		}
	}
	return "", false, nil
}

// newSubscription validates and compiles a subscription from any source.
func newSubscription(kind runtimev1.PubsubSubscriptionType, source, pubsub, topic string, md map[string]string,
	rules []resources.Rule, deadLetter string, bulk resources.BulkSubscribe,
) (*subscription, error) {
	if pubsub == "" || topic == "" {
		return nil, fmt.Errorf("%s: pubsubname and topic are required", source)
	}
	raw, err := cloudevent.RawPayload(md)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	s := &subscription{kind: kind, source: source, pubsub: pubsub, topic: topic, metadata: md, deadLetter: deadLetter, raw: raw}
	if s.metadata == nil {
		s.metadata = map[string]string{}
	}
	if bulk.Enabled {
		s.bulk = bulkConfig{enabled: true, maxCount: int(bulk.MaxMessagesCount), maxAwait: time.Duration(bulk.MaxAwaitDurationMs) * time.Millisecond}
		if s.bulk.maxCount <= 0 {
			s.bulk.maxCount = defaultBulkMaxCount
		}
		if s.bulk.maxAwait <= 0 {
			s.bulk.maxAwait = defaultBulkMaxAwait
		}
	}
	var env *cel.Env
	for _, r := range rules {
		cr := rule{match: r.Match, path: r.Path}
		if r.Match != "" {
			if env == nil {
				if env, err = cel.NewEnv(cel.Variable("event", cel.DynType)); err != nil {
					return nil, fmt.Errorf("%s: routing rules: %w", source, err)
				}
			}
			ast, iss := env.Compile(r.Match)
			if iss != nil && iss.Err() != nil {
				return nil, fmt.Errorf("%s: routing rule %q: %w", source, r.Match, iss.Err())
			}
			if cr.prg, err = env.Program(ast); err != nil {
				return nil, fmt.Errorf("%s: routing rule %q: %w", source, r.Match, err)
			}
		}
		s.rules = append(s.rules, cr)
	}
	if len(s.rules) == 0 {
		return nil, fmt.Errorf("%s: subscription to %s/%s has no route", source, pubsub, topic)
	}
	return s, nil
}

// withDefault returns rules plus the default route as the final catch-all.
func withDefault(rules []resources.Rule, def string) []resources.Rule {
	out := slices.Clone(rules)
	if def != "" {
		out = append(out, resources.Rule{Path: def})
	}
	return out
}

// declarative converts the Subscription resources that apply to this app.
func (a *API) declarative() []*subscription {
	var out []*subscription
	for _, d := range a.decl {
		if len(d.Scopes) > 0 && !slices.Contains(d.Scopes, a.appID) {
			continue
		}
		src := d.Name
		if d.File != "" {
			src = fmt.Sprintf("Subscription %q (%s:%d)", d.Name, d.File, d.Line)
		}
		def := d.Routes.Default
		if def == "" {
			def = d.Route
		}
		s, err := newSubscription(runtimev1.PubsubSubscriptionType_DECLARATIVE, src, d.PubsubName, d.Topic, cloneMap(d.Metadata),
			withDefault(d.Routes.Rules, def), d.DeadLetterTopic, d.BulkSubscribe)
		if err != nil {
			a.log.Warn("declarative subscription skipped", "err", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// appSubscription is one element of the GET /dapr/subscribe answer.
type appSubscription struct {
	PubsubName string `json:"pubsubname"`
	Topic      string `json:"topic"`
	Route      string `json:"route"`
	Routes     struct {
		Rules []struct {
			Match string `json:"match"`
			Path  string `json:"path"`
		} `json:"rules"`
		Default string `json:"default"`
	} `json:"routes"`
	DeadLetterTopic string            `json:"deadLetterTopic"`
	Metadata        map[string]string `json:"metadata"`
	BulkSubscribe   struct {
		Enabled            bool  `json:"enabled"`
		MaxMessagesCount   int32 `json:"maxMessagesCount"`
		MaxAwaitDurationMs int32 `json:"maxAwaitDurationMs"`
	} `json:"bulkSubscribe"`
}

// Dapr's init retries for GET /dapr/subscribe.
const (
	subscribeAttempts     = 4 // one call plus 3 retries
	subscribeFirstBackoff = 500 * time.Millisecond
	subscribeCallTimeout  = 10 * time.Second
)

// programmatic asks the app for its subscriptions.
func (a *API) programmatic(ctx context.Context) ([]*subscription, error) {
	if a.app == nil {
		return nil, nil
	}
	if g, ok := a.app.(grpcApp); ok {
		return a.programmaticGRPC(ctx, g)
	}
	return a.programmaticHTTP(ctx)
}

func (a *API) programmaticHTTP(ctx context.Context) ([]*subscription, error) {
	var body []byte
	backoff := subscribeFirstBackoff
	for attempt := 1; ; attempt++ {
		b, status, err := a.getSubscribe(ctx)
		switch {
		case err == nil && status == http.StatusNotFound:
			return nil, nil
		case err == nil && status == http.StatusOK:
			body = b
		case err == nil:
			err = fmt.Errorf("GET /dapr/subscribe answered %d: %.200s", status, b)
		}
		if body != nil {
			break
		}
		if attempt >= subscribeAttempts || ctx.Err() != nil {
			return nil, err
		}
		a.log.Debug("GET /dapr/subscribe failed, retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	var list []appSubscription
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("GET /dapr/subscribe: decode answer: %w", err)
	}
	var out []*subscription
	for i, l := range list {
		rules := make([]resources.Rule, 0, len(l.Routes.Rules)+1)
		for _, r := range l.Routes.Rules {
			rules = append(rules, resources.Rule{Match: r.Match, Path: r.Path})
		}
		def := l.Routes.Default
		if def == "" {
			def = l.Route
		}
		s, err := newSubscription(runtimev1.PubsubSubscriptionType_PROGRAMMATIC, "GET /dapr/subscribe entry "+strconv.Itoa(i),
			l.PubsubName, l.Topic, l.Metadata, withDefault(rules, def), l.DeadLetterTopic,
			resources.BulkSubscribe{Enabled: l.BulkSubscribe.Enabled, MaxMessagesCount: l.BulkSubscribe.MaxMessagesCount, MaxAwaitDurationMs: l.BulkSubscribe.MaxAwaitDurationMs})
		if err != nil {
			a.log.Warn("programmatic subscription skipped", "err", err)
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func (a *API) getSubscribe(ctx context.Context) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, subscribeCallTimeout)
	defer cancel()
	resp, err := a.app.Invoke(ctx, &appchannel.Request{Method: "dapr/subscribe", Verb: http.MethodGet, Header: http.Header{}})
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("GET /dapr/subscribe: read answer: %w", err)
	}
	return b, resp.Status, nil
}

func (a *API) programmaticGRPC(ctx context.Context, g grpcApp) ([]*subscription, error) {
	client := runtimev1.NewAppCallbackClient(g.Conn())
	var resp *runtimev1.ListTopicSubscriptionsResponse
	backoff := subscribeFirstBackoff
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(outgoingContext(g, ctx, nil), subscribeCallTimeout)
		r, err := client.ListTopicSubscriptions(cctx, &emptypb.Empty{})
		cancel()
		if status.Code(err) == codes.Unimplemented {
			return nil, nil
		}
		if err == nil {
			resp = r
			break
		}
		if attempt >= subscribeAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("ListTopicSubscriptions: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	var out []*subscription
	for i, t := range resp.GetSubscriptions() {
		var rules []resources.Rule
		if rt := t.GetRoutes(); rt != nil {
			for _, r := range rt.GetRules() {
				rules = append(rules, resources.Rule{Match: r.GetMatch(), Path: r.GetPath()})
			}
			rules = withDefault(rules, rt.GetDefault())
		} else {
			rules = []resources.Rule{{}}
		}
		bs := t.GetBulkSubscribe()
		s, err := newSubscription(runtimev1.PubsubSubscriptionType_PROGRAMMATIC, "ListTopicSubscriptions entry "+strconv.Itoa(i),
			t.GetPubsubName(), t.GetTopic(), t.GetMetadata(), rules, t.GetDeadLetterTopic(),
			resources.BulkSubscribe{Enabled: bs.GetEnabled(), MaxMessagesCount: bs.GetMaxMessagesCount(), MaxAwaitDurationMs: bs.GetMaxAwaitDurationMs()})
		if err != nil {
			a.log.Warn("programmatic subscription skipped", "err", err)
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
