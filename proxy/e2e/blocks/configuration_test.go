package blockse2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

const configStore = "configstore"

type configItem struct {
	Value    string            `json:"value"`
	Version  string            `json:"version"`
	Metadata map[string]string `json:"metadata"`
}

// startConfigSidecar starts Redis-backed configuration with two items set
// directly in Redis, and a sidecar whose app is the returned test app.
func startConfigSidecar(t *testing.T) (sc *sidecar, app *testApp, k1, k2 string, set func(key, val string)) {
	rc := needRedis(t)
	prefix := e2etest.Uniq("cfge2e-")
	delRedisKeys(t, rc, prefix+"*")
	k1, k2 = prefix+"-flag", prefix+"-mode"
	set = func(key, val string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rc.Set(ctx, key, val, 0).Err(); err != nil {
			t.Fatalf("SET %s in Redis: %v", key, err)
		}
	}
	set(k1, "v1||1")
	set(k2, "fast||7")
	app = startApp(t)
	comp := component{name: configStore, typ: "configuration.redis", md: map[string]string{"redisHost": redisAddr}}
	sc = startSidecar(t, sidecarOpts{resources: writeComponents(t, comp), appPort: app.port})
	return sc, app, k1, k2, set
}

func TestConfigurationGetAndSubscribeSDK(t *testing.T) {
	sc, _, k1, k2, set := startConfigSidecar(t)
	client := sc.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	items, err := client.GetConfigurationItems(ctx, configStore, []string{k1, k2, "absent-" + k1})
	if err != nil {
		t.Fatalf("Go SDK GetConfigurationItems: %v", err)
	}
	if len(items) != 2 || items[k1] == nil || items[k2] == nil ||
		items[k1].Value != "v1" || items[k1].Version != "1" || items[k2].Value != "fast" || items[k2].Version != "7" {
		t.Errorf("GetConfigurationItems = %v, want %s=v1@1 and %s=fast@7 only", fmtItems(items), k1, k2)
	}
	item, err := client.GetConfigurationItem(ctx, configStore, k2)
	if err != nil || item == nil || item.Value != "fast" {
		t.Errorf("GetConfigurationItem(%s) = %+v, %v", k2, item, err)
	}

	updates := make(chan map[string]*dapr.ConfigurationItem, 16)
	subCtx, subCancel := context.WithCancel(ctx)
	defer subCancel()
	// SubscribeConfigurationItems blocks forever when the stream fails before
	// its first message (an SDK limitation), so it runs under a deadline.
	type subResult struct {
		id  string
		err error
	}
	subDone := make(chan subResult, 1)
	go func() {
		id, err := client.SubscribeConfigurationItems(subCtx, configStore, []string{k1}, func(_ string, items map[string]*dapr.ConfigurationItem) {
			updates <- items
		})
		subDone <- subResult{id, err}
	}()
	var sub subResult
	select {
	case sub = <-subDone:
	case <-time.After(20 * time.Second):
		t.Fatalf("Go SDK SubscribeConfigurationItems did not return a subscription id within 20 s")
	}
	if sub.err != nil || sub.id == "" {
		t.Fatalf("Go SDK SubscribeConfigurationItems = %q, %v", sub.id, sub.err)
	}

	set(k2, "slow||8") // not subscribed
	set(k1, "v2||2")
	select {
	case got := <-updates:
		if len(got) != 1 || got[k1] == nil || got[k1].Value != "v2" || got[k1].Version != "2" {
			t.Errorf("first update = %v, want only %s=v2@2", fmtItems(got), k1)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no update within 10 s after SET %s v2||2 in Redis", k1)
	}

	if err := client.UnsubscribeConfigurationItems(ctx, configStore, sub.id); err != nil {
		t.Fatalf("Go SDK UnsubscribeConfigurationItems(%s): %v", sub.id, err)
	}
	if err := client.UnsubscribeConfigurationItems(ctx, configStore, sub.id); err == nil {
		t.Errorf("a second unsubscribe of %s succeeded", sub.id)
	}
}

func fmtItems(items map[string]*dapr.ConfigurationItem) string {
	m := map[string]string{}
	for k, v := range items {
		if v == nil {
			m[k] = "<nil>"
			continue
		}
		m[k] = v.Value + "@" + v.Version
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// configPush is the body of POST /configuration/{store}/{key}.
type configPush struct {
	ID    string                `json:"id"`
	Items map[string]configItem `json:"items"`
}

func (a *testApp) pushes(t *testing.T, key string) []configPush {
	t.Helper()
	var out []configPush
	for _, r := range a.requests(http.MethodPost, "/configuration/"+configStore+"/"+key) {
		var p configPush
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("push to the app is not {id, items}: %v; %s", err, r.body)
		}
		out = append(out, p)
	}
	return out
}

func TestConfigurationHTTP(t *testing.T) {
	sc, app, k1, k2, set := startConfigSidecar(t)

	for _, ver := range []string{"v1.0", "v1.0-alpha1"} {
		r := do(t, http.MethodGet, sc.URL("/"+ver+"/configuration/"+configStore+"?key="+url.QueryEscape(k1)+"&key="+url.QueryEscape(k2)), nil)
		var got map[string]configItem
		decode(t, "GET configuration", r, &got)
		if r.status != http.StatusOK || len(got) != 2 || got[k1].Value != "v1" || got[k1].Version != "1" || got[k2].Value != "fast" {
			t.Errorf("GET /%s/configuration/%s = %d %s", ver, configStore, r.status, r.body)
		}
	}
	wantError(t, "unknown store", do(t, http.MethodGet, sc.URL("/v1.0/configuration/nosuchstore?key=a"), nil),
		http.StatusBadRequest, "ERR_CONFIGURATION_STORE_NOT_FOUND")

	r := do(t, http.MethodGet, sc.URL("/v1.0/configuration/"+configStore+"/subscribe?key="+url.QueryEscape(k1)), nil)
	var sub struct {
		ID string `json:"id"`
	}
	decode(t, "subscribe", r, &sub)
	if r.status != http.StatusOK || sub.ID == "" {
		t.Fatalf("GET /v1.0/configuration/%s/subscribe = %d %s, want 200 {\"id\":…}", configStore, r.status, r.body)
	}

	set(k2, "slow||8") // not subscribed: never pushed
	set(k1, "v3||3")
	e2etest.WaitFor(t, 10*time.Second, "POST /configuration/"+configStore+"/"+k1+" to the app", func() bool {
		return len(app.pushes(t, k1)) > 0
	})
	p := app.pushes(t, k1)[0]
	if p.ID != sub.ID || len(p.Items) != 1 || p.Items[k1].Value != "v3" || p.Items[k1].Version != "3" {
		t.Errorf("push = %+v, want id %s and only %s=v3@3", p, sub.ID, k1)
	}

	r = do(t, http.MethodGet, sc.URL("/v1.0/configuration/"+configStore+"/"+sub.ID+"/unsubscribe"), nil)
	var unsub struct {
		OK bool `json:"ok"`
	}
	decode(t, "unsubscribe", r, &unsub)
	if r.status != http.StatusOK || !unsub.OK {
		t.Fatalf("unsubscribe = %d %s, want 200 {\"ok\":true}", r.status, r.body)
	}

	// After unsubscribing, changes to k1 are no longer pushed. A fresh
	// subscription to k2 is the marker: once its push arrives, a push for
	// the earlier change to k1 would have too (same Redis, same sidecar).
	before := len(app.pushes(t, k1))
	r = do(t, http.MethodGet, sc.URL("/v1.0/configuration/"+configStore+"/subscribe?key="+url.QueryEscape(k2)), nil)
	decode(t, "subscribe k2", r, &sub)
	set(k1, "v4||4")
	set(k2, "marker||9")
	e2etest.WaitFor(t, 10*time.Second, "the push for "+k2, func() bool { return len(app.pushes(t, k2)) > 0 })
	time.Sleep(300 * time.Millisecond) // grace for a late push on the old subscription; there is no signal for absence
	if n := len(app.pushes(t, k1)); n != before {
		t.Errorf("%d pushes for %s after unsubscribe: %+v", n-before, k1, app.pushes(t, k1)[before:])
	}
	if ps := app.pushes(t, k2); len(ps) != 1 || ps[0].Items[k2].Value != "marker" {
		t.Errorf("pushes for %s = %+v, want one with marker (the earlier slow||8 came before the subscription)", k2, ps)
	}
}

// TestConfigurationSubscribeWithoutApp: an HTTP subscription needs an app to
// push to: 500 ERR_APP_CHANNEL_NIL.
func TestConfigurationSubscribeWithoutApp(t *testing.T) {
	needRedis(t)
	comp := component{name: configStore, typ: "configuration.redis", md: map[string]string{"redisHost": redisAddr}}
	sc := startSidecar(t, sidecarOpts{resources: writeComponents(t, comp)})
	wantError(t, "subscribe without an app", do(t, http.MethodGet, sc.URL("/v1.0/configuration/"+configStore+"/subscribe?key=a"), nil),
		http.StatusInternalServerError, "ERR_APP_CHANNEL_NIL")
	// Dapr answers a failed unsubscribe with its own shape, not an error body.
	r := do(t, http.MethodGet, sc.URL("/v1.0/configuration/"+configStore+"/nosuchid/unsubscribe"), nil)
	var unsub struct {
		OK      *bool  `json:"ok"`
		Message string `json:"message"`
	}
	decode(t, "unsubscribe of an unknown id", r, &unsub)
	if r.status != http.StatusInternalServerError || unsub.OK == nil || *unsub.OK || unsub.Message == "" {
		t.Errorf("unsubscribe of an unknown id = %d %s, want 500 {\"ok\":false,\"message\":…}", r.status, r.body)
	}
}
