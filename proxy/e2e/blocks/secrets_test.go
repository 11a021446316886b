package blockse2e

import (
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const secretStore = "localsecretstore"

// secretsFile writes a secrets JSON file and returns a local.file component
// reading it.
func secretsFile(t *testing.T, name string, secrets map[string]any) component {
	return component{name: name, typ: "secretstores.local.file", md: map[string]string{
		"secretsFile": writeJSON(t, "secrets.json", secrets), "nestedSeparator": ":"}}
}

func TestSecretsGetAndBulk(t *testing.T) {
	store := secretsFile(t, secretStore, map[string]any{
		"db-password": "s3cret",
		"nested":      map[string]any{"a": "1", "b": 2},
	})
	sc := startSidecar(t, sidecarOpts{resources: writeComponents(t, store)})
	client := sc.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, tc := range []struct {
		key  string
		want map[string]string
	}{
		{"db-password", map[string]string{"db-password": "s3cret"}},
		{"nested:a", map[string]string{"nested:a": "1"}},
		{"nested:b", map[string]string{"nested:b": "2"}},
	} {
		got, err := client.GetSecret(ctx, secretStore, tc.key, nil)
		if err != nil {
			t.Errorf("Go SDK GetSecret(%s): %v", tc.key, err)
		} else if !maps.Equal(got, tc.want) {
			t.Errorf("Go SDK GetSecret(%s) = %v, want %v", tc.key, got, tc.want)
		}
		r := do(t, http.MethodGet, sc.URL("/v1.0/secrets/"+secretStore+"/"+tc.key), nil)
		var m map[string]string
		decode(t, "GET secret "+tc.key, r, &m)
		if r.status != http.StatusOK || !maps.Equal(m, tc.want) {
			t.Errorf("GET /v1.0/secrets/%s/%s = %d %s, want 200 %v", secretStore, tc.key, r.status, r.body, tc.want)
		}
	}

	wantBulk := map[string]map[string]string{
		"db-password": {"db-password": "s3cret"},
		"nested:a":    {"nested:a": "1"},
		"nested:b":    {"nested:b": "2"},
	}
	bulk, err := client.GetBulkSecret(ctx, secretStore, nil)
	if err != nil {
		t.Fatalf("Go SDK GetBulkSecret: %v", err)
	}
	if !maps.EqualFunc(bulk, wantBulk, maps.Equal) {
		t.Errorf("Go SDK GetBulkSecret = %v, want %v", bulk, wantBulk)
	}
	r := do(t, http.MethodGet, sc.URL("/v1.0/secrets/"+secretStore+"/bulk"), nil)
	var httpBulk map[string]map[string]string
	decode(t, "GET bulk", r, &httpBulk)
	if r.status != http.StatusOK || !maps.EqualFunc(httpBulk, wantBulk, maps.Equal) {
		t.Errorf("GET /v1.0/secrets/%s/bulk = %d %s, want 200 %v", secretStore, r.status, r.body, wantBulk)
	}

	// Errors, with Dapr's quirks: an unknown store is 401.
	wantError(t, "unknown store", do(t, http.MethodGet, sc.URL("/v1.0/secrets/nosuchstore/db-password"), nil),
		http.StatusUnauthorized, "ERR_SECRET_STORE_NOT_FOUND")
	wantError(t, "unknown store bulk", do(t, http.MethodGet, sc.URL("/v1.0/secrets/nosuchstore/bulk"), nil),
		http.StatusUnauthorized, "ERR_SECRET_STORE_NOT_FOUND")
	wantError(t, "missing secret", do(t, http.MethodGet, sc.URL("/v1.0/secrets/"+secretStore+"/nope"), nil),
		http.StatusInternalServerError, "ERR_SECRET_GET")
	if _, err := client.GetSecret(ctx, "nosuchstore", "db-password", nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Go SDK GetSecret from an unknown store: %v, want code InvalidArgument", err)
	}
	if _, err := client.GetSecret(ctx, secretStore, "nope", nil); status.Code(err) != codes.Internal {
		t.Errorf("Go SDK GetSecret of a missing secret: %v, want code Internal", err)
	}
}

// TestSecretsNotConfigured: no secret store at all is 500
// ERR_SECRET_STORES_NOT_CONFIGURED (FailedPrecondition over gRPC).
func TestSecretsNotConfigured(t *testing.T) {
	sc := startSidecar(t, sidecarOpts{})
	wantError(t, "no secret stores", do(t, http.MethodGet, sc.URL("/v1.0/secrets/any/key"), nil),
		http.StatusInternalServerError, "ERR_SECRET_STORES_NOT_CONFIGURED")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := sc.Client(t).GetSecret(ctx, "any", "key", nil); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Go SDK GetSecret without secret stores: %v, want code FailedPrecondition", err)
	}
}

// TestSecretKeyRef: components whose metadata comes from the secret store
// named in auth.secretStore. The SQLite state store's connectionString is a
// secret: the state saved through it must land in the file the secret names.
// The Redis state store's (empty) password is a secret too.
func TestSecretKeyRef(t *testing.T) {
	rc := needRedis(t)
	appID := e2etest.Uniq("secretref-")
	delRedisKeys(t, rc, appID+"||*")
	dbPath := filepath.Join(t.TempDir(), "from-secret.db")
	store := secretsFile(t, secretStore, map[string]any{
		"sqlite": map[string]any{"path": dbPath},
		"redis":  map[string]any{"password": ""},
	})
	sqliteState := component{name: "sqlitestate", typ: "state.sqlite",
		refs: map[string][2]string{"connectionString": {"sqlite:path", "sqlite:path"}}, secretStore: secretStore}
	redisState := component{name: "redisstate", typ: "state.redis", md: map[string]string{"redisHost": redisAddr},
		refs: map[string][2]string{"redisPassword": {"redis:password", "redis:password"}}, secretStore: secretStore}
	// The secret store is written last: secret stores must be provisioned
	// first whatever the file order.
	sc := startSidecar(t, sidecarOpts{appID: appID, resources: writeComponents(t, sqliteState, redisState, store)})
	client := sc.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, st := range []string{"sqlitestate", "redisstate"} {
		if err := client.SaveState(ctx, st, "k", []byte("v-"+st), nil); err != nil {
			t.Fatalf("SaveState into %s: %v", st, err)
		}
		item, err := client.GetState(ctx, st, "k", nil)
		if err != nil || string(item.Value) != "v-"+st {
			t.Errorf("GetState from %s = %+v, %v", st, item, err)
		}
	}
	if fi, err := os.Stat(dbPath); err != nil || fi.Size() == 0 {
		t.Errorf("state.sqlite did not use the connectionString from the secret (%s): %v", dbPath, err)
	}
	if n, err := rc.Exists(ctx, appID+"||k").Result(); err != nil || n != 1 {
		t.Errorf("state.redis did not write %s||k: exists=%d %v", appID, n, err)
	}
}

// TestSecretKeyRefErrors: a reference the sidecar cannot resolve stops the
// start with an error naming the component (never a silent empty value).
func TestSecretKeyRefErrors(t *testing.T) {
	store := secretsFile(t, secretStore, map[string]any{"present": "x"})
	for _, tc := range []struct {
		name string
		comp component
	}{
		{"missing secret", component{name: "badref", typ: "state.sqlite",
			refs: map[string][2]string{"connectionString": {"absent", "absent"}}, secretStore: secretStore}},
		{"unknown store", component{name: "badref", typ: "state.sqlite",
			refs: map[string][2]string{"connectionString": {"present", "present"}}, secretStore: "nosuchstore"}},
		{"no auth.secretStore", component{name: "badref", typ: "state.sqlite",
			refs: map[string][2]string{"connectionString": {"present", "present"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeComponents(t, store, tc.comp)
			p := e2etest.LaunchSidecar(t, e2etest.SidecarConfig{Bin: outrigger, AppID: e2etest.Uniq("badref-"),
				Args: []string{"--resources-path", dir}})
			select {
			case <-p.Done():
			case <-time.After(30 * time.Second):
				t.Fatalf("sidecar with an unresolvable secretKeyRef (%s) did not exit within 30 s:\n%s", tc.name, p.Out)
			}
			if p.Err() == nil {
				t.Errorf("sidecar with an unresolvable secretKeyRef (%s) exited 0", tc.name)
			}
			if !containsAll(p.Out.String(), "badref") {
				t.Errorf("start error does not name the component \"badref\":\n%s", p.Out)
			}
		})
	}
}

// TestSecretScopes: Configuration spec.secrets.scopes. Store "locked" denies
// by default and allows one secret; store "open" allows by default and denies
// one. Denied keys are 403 ERR_PERMISSION_DENIED over HTTP and
// PermissionDenied over gRPC; bulk answers are filtered.
func TestSecretScopes(t *testing.T) {
	secrets := map[string]any{"allowed": "a", "denied": "d", "other": "o"}
	locked := secretsFile(t, "locked", secrets)
	open := secretsFile(t, "open", secrets)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: scoped
spec:
  secrets:
    scopes:
    - storeName: locked
      defaultAccess: deny
      allowedSecrets: ["allowed"]
    - storeName: open
      defaultAccess: allow
      deniedSecrets: ["denied"]
`)
	sc := startSidecar(t, sidecarOpts{resources: writeComponents(t, locked, open), config: cfg})
	client := sc.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, tc := range []struct {
		store, key string
		allowed    bool
	}{
		{"locked", "allowed", true},
		{"locked", "denied", false},
		{"locked", "other", false},
		{"open", "allowed", true},
		{"open", "denied", false},
		{"open", "other", true},
	} {
		r := do(t, http.MethodGet, sc.URL("/v1.0/secrets/"+tc.store+"/"+tc.key), nil)
		got, err := client.GetSecret(ctx, tc.store, tc.key, nil)
		if tc.allowed {
			if r.status != http.StatusOK {
				t.Errorf("GET %s/%s: %d %s, want 200", tc.store, tc.key, r.status, r.body)
			}
			if err != nil || got[tc.key] != secrets[tc.key] {
				t.Errorf("Go SDK GetSecret(%s, %s) = %v, %v", tc.store, tc.key, got, err)
			}
			continue
		}
		wantError(t, "GET "+tc.store+"/"+tc.key, r, http.StatusForbidden, "ERR_PERMISSION_DENIED")
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("Go SDK GetSecret(%s, %s) = %v, %v; want code PermissionDenied", tc.store, tc.key, got, err)
		}
	}

	for store, want := range map[string][]string{"locked": {"allowed"}, "open": {"allowed", "other"}} {
		bulk, err := client.GetBulkSecret(ctx, store, nil)
		if err != nil {
			t.Errorf("Go SDK GetBulkSecret(%s): %v", store, err)
			continue
		}
		if got := sortedKeys(bulk); !equalStrings(got, want) {
			t.Errorf("Go SDK GetBulkSecret(%s) has secrets %v, want %v (filtered by scopes)", store, got, want)
		}
		r := do(t, http.MethodGet, sc.URL("/v1.0/secrets/"+store+"/bulk"), nil)
		var m map[string]map[string]string
		decode(t, "GET bulk "+store, r, &m)
		if got := sortedKeys(m); !equalStrings(got, want) {
			t.Errorf("GET /v1.0/secrets/%s/bulk has secrets %v, want %v", store, got, want)
		}
	}
}
