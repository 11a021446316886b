package main

import (
	"context"
	"os"
	"strings"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Store is the local.env secret store.
type Store struct {
	prefix string
}

// New returns an uninitialised store (the SDK calls it once per component instance).
func New() sdk.SecretStore { return &Store{} }

// config is the parsed component metadata.
type config struct{ prefix string }

func parse(md sdk.Metadata) (config, error) {
	for k, v := range md {
		if strings.EqualFold(k, "prefix") {
			return config{prefix: v}, nil
		}
	}
	return config{}, nil
}

// Init reads the prefix.
func (s *Store) Init(_ context.Context, md sdk.Metadata) error {
	c, err := parse(md)
	if err != nil {
		return err
	}
	s.prefix = c.prefix
	return nil
}

// goPluginVars are set by hashicorp/go-plugin in a launched plugin's
// environment; they describe the plugin, not the user's secrets.
var goPluginVars = []string{
	"PLUGIN_CLIENT_CERT", "PLUGIN_MAX_PORT", "PLUGIN_MIN_PORT", "PLUGIN_MULTIPLEX_GRPC",
	"PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_UNIX_SOCKET_DIR", "PLUGIN_UNIX_SOCKET_GROUP",
}

// allowed reports whether a variable may be read as a secret: never Dapr's
// own (DAPR_*, APP_API_TOKEN, as Dapr's local.env) nor the plugin's.
func allowed(name string) bool {
	u := strings.ToUpper(name)
	switch {
	case u == "APP_API_TOKEN", strings.HasPrefix(u, "DAPR_"), u == strings.ToUpper(sdk.Handshake.MagicCookieKey):
		return false
	}
	for _, v := range goPluginVars {
		if u == v {
			return false
		}
	}
	return true
}

// Get reads <prefix><name>. As Dapr's local.env, an unset (or forbidden)
// variable is an empty value, not an error.
func (s *Store) Get(_ context.Context, name string, _ map[string]string) (map[string]string, error) {
	v := ""
	if full := s.prefix + name; allowed(full) {
		v = os.Getenv(full)
	}
	return map[string]string{name: v}, nil
}

// BulkGet returns every allowed variable that starts with the prefix
// (case-sensitive), named without it.
func (s *Store) BulkGet(context.Context, map[string]string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		name, ok := strings.CutPrefix(k, s.prefix)
		if !ok || name == "" || !allowed(k) {
			continue
		}
		out[name] = map[string]string{name: v}
	}
	return out, nil
}
