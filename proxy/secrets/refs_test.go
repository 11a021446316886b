package secrets_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/resources"
	"github.com/outrigger/outrigger/proxy/secrets"
)

func ref(name, key string) *resources.SecretKeyRef {
	return &resources.SecretKeyRef{Name: name, Key: key}
}

func TestResolveRefs(t *testing.T) {
	stores := mapStores{
		"local": {Name: "local", Conn: initInstance(t, uniq(t, "local"), map[string]string{"secretsFile": secretsFile})},
		"multi": {Name: "multi", Conn: initInstance(t, uniq(t, "multi"), map[string]string{"secretsFile": secretsFile, "multiValued": "true"})},
	}
	get := secrets.StoreGetter(stores)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name    string
		store   string
		items   []resources.MetadataItem
		want    map[string]string // name → resolved value
		wantErr string
		is      error
	}{
		{name: "key defaults to name", store: "local",
			items: []resources.MetadataItem{{Name: "redisHost", Value: "localhost:6379"}, {Name: "redisPassword", SecretKeyRef: ref("db-pass", "")}},
			want:  map[string]string{"redisHost": "localhost:6379", "redisPassword": "pw"}},
		{name: "explicit key of a multi-valued secret", store: "multi",
			items: []resources.MetadataItem{{Name: "user", SecretKeyRef: ref("redis", "user")}, {Name: "pass", SecretKeyRef: ref("redis", "password")}},
			want:  map[string]string{"user": "ru", "pass": "rp"}},
		{name: "ref overrides a stale value", store: "local",
			items: []resources.MetadataItem{{Name: "k", Value: "old", SecretKeyRef: ref("api-key", "api-key")}},
			want:  map[string]string{"k": "k"}},
		{name: "no refs, no store needed", store: "",
			items: []resources.MetadataItem{{Name: "a", Value: "1"}},
			want:  map[string]string{"a": "1"}},
		{name: "no auth.secretStore", store: "",
			items:   []resources.MetadataItem{{Name: "redisPassword", SecretKeyRef: ref("db-pass", "")}},
			wantErr: "component comp (comp.yaml:3): metadata redisPassword: secretKeyRef needs auth.secretStore outside Kubernetes",
			is:      secrets.ErrNoAuthSecretStore},
		{name: "unknown store", store: "vault",
			items:   []resources.MetadataItem{{Name: "p", SecretKeyRef: ref("db-pass", "")}},
			wantErr: `secret store "vault" is not provisioned`},
		{name: "missing secret", store: "local",
			items:   []resources.MetadataItem{{Name: "p", SecretKeyRef: ref("nope", "")}},
			wantErr: "secret nope not found"},
		{name: "missing key", store: "multi",
			items:   []resources.MetadataItem{{Name: "p", SecretKeyRef: ref("redis", "token")}},
			wantErr: `secret "redis" has no key "token"`},
		{name: "ref without name", store: "local",
			items:   []resources.MetadataItem{{Name: "p", SecretKeyRef: ref("", "x")}},
			wantErr: "metadata p: secretKeyRef has no name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := resources.Component{Name: "comp", Type: "state.redis", AuthSecretStore: tc.store, Metadata: tc.items, File: "comp.yaml", Line: 3}
			orig := slices.Clone(tc.items)
			out, err := secrets.ResolveRefs(ctx, in, get)
			if !slices.Equal(in.Metadata, orig) {
				t.Fatalf("ResolveRefs modified its input: %v", in.Metadata)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Fatalf("err = %v, want errors.Is %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Properties(); len(got) != len(tc.want) {
				t.Fatalf("properties %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if out.Properties()[k] != v {
					t.Errorf("%s = %q, want %q", k, out.Properties()[k], v)
				}
			}
		})
	}
}

func TestResolveEndpointRefs(t *testing.T) {
	get := secrets.StoreGetter(mapStores{"local": {Name: "local", Conn: initInstance(t, uniq(t, "local"), map[string]string{"secretsFile": secretsFile})}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := resources.HTTPEndpoint{
		Name: "ext", AuthSecretStore: "local",
		Headers:   []resources.MetadataItem{{Name: "Authorization", SecretKeyRef: ref("api-key", "")}, {Name: "X-Plain", Value: "p"}},
		ClientTLS: &resources.ClientTLS{RootCA: &resources.TLSDocument{Value: "PEM"}, PrivateKey: &resources.TLSDocument{SecretKeyRef: ref("db-pass", "")}},
	}
	out, err := secrets.ResolveEndpointRefs(ctx, in, get)
	if err != nil {
		t.Fatal(err)
	}
	if out.Headers[0].Value != "k" || out.Headers[1].Value != "p" {
		t.Errorf("headers %+v", out.Headers)
	}
	if out.ClientTLS.PrivateKey.Value != "pw" || out.ClientTLS.RootCA.Value != "PEM" || out.ClientTLS.Certificate != nil {
		t.Errorf("clientTLS %+v", out.ClientTLS)
	}
	if in.ClientTLS.PrivateKey.Value != "" || in.Headers[0].Value != "" {
		t.Error("ResolveEndpointRefs modified its input")
	}
	in.AuthSecretStore = ""
	if _, err := secrets.ResolveEndpointRefs(ctx, in, get); !errors.Is(err, secrets.ErrNoAuthSecretStore) || !strings.Contains(err.Error(), "HTTPEndpoint ext") {
		t.Errorf("err = %v, want ErrNoAuthSecretStore naming the endpoint", err)
	}
}

func TestOrder(t *testing.T) {
	comp := func(name, typ, auth string, withRef bool) resources.Component {
		c := resources.Component{Name: name, Type: typ, AuthSecretStore: auth}
		if withRef {
			c.Metadata = []resources.MetadataItem{{Name: "token", SecretKeyRef: ref("t", "")}}
		}
		return c
	}
	names := func(cs []resources.Component) string {
		var n []string
		for _, c := range cs {
			n = append(n, c.Name)
		}
		return strings.Join(n, ",")
	}
	for _, tc := range []struct {
		name    string
		in      []resources.Component
		want    string
		wantErr string
	}{
		{name: "secret stores first", in: []resources.Component{
			comp("state", "state.redis", "files", true), comp("pubsub", "pubsub.redis", "", false), comp("files", "secretstores.local.file", "", false),
		}, want: "files,state,pubsub"},
		{name: "dependent secret store after its store", in: []resources.Component{
			comp("vault", "secretstores.hashicorp.vault", "env", true), comp("env", "secretstores.local.env", "", false), comp("state", "state.sqlite", "", false),
		}, want: "env,vault,state"},
		{name: "auth store that is not a secret store does not block", in: []resources.Component{
			comp("vault", "secretstores.hashicorp.vault", "kubernetes", true),
		}, want: "vault"},
		{name: "cycle", in: []resources.Component{
			comp("a", "secretstores.x", "b", true), comp("b", "secretstores.y", "a", true),
		}, wantErr: "cycle"},
		{name: "self reference", in: []resources.Component{comp("a", "secretstores.x", "a", true)}, wantErr: "cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := secrets.Order(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(out); got != tc.want {
				t.Fatalf("order %s, want %s", got, tc.want)
			}
		})
	}
}
