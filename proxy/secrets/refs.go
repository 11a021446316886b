package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"

	componentsv1 "github.com/dapr/dapr/pkg/proto/components/v1"

	"github.com/outrigger/outrigger/proxy/resources"
)

// Getter returns the value under key of secret name in the secret store
// named store.
type Getter func(ctx context.Context, store, name, key string) (string, error)

// ErrNoAuthSecretStore: a resource uses secretKeyRef without naming its
// secret store in auth.secretStore (Dapr's default, "kubernetes", does not
// exist outside Kubernetes).
var ErrNoAuthSecretStore = errors.New("secretKeyRef needs auth.secretStore outside Kubernetes")

// StoreGetter is the Getter over provisioned secret stores. It looks the
// store up at each call, so stores provisioned after it was made are found.
// It calls the plugin directly: secrets.scopes do not apply to component
// references (as in Dapr).
func StoreGetter(stores Stores) Getter {
	return func(ctx context.Context, store, name, key string) (string, error) {
		s, ok := stores.Lookup(store)
		if !ok || s.Conn == nil {
			return "", fmt.Errorf("secret store %q is not provisioned (it must exist, and secret stores are provisioned before the components that reference them)", store)
		}
		resp, err := componentsv1.NewSecretStoreClient(s.Conn).Get(ctx, &componentsv1.GetSecretRequest{Key: name})
		if err != nil {
			return "", fmt.Errorf("secret store %q: getting secret %q: %s", store, name, pluginMessage(err))
		}
		v, ok := resp.GetData()[key]
		if !ok {
			return "", fmt.Errorf("secret store %q: secret %q has no key %q", store, name, key)
		}
		return v, nil
	}
}

// ResolveRefs returns c with the Value of every metadata item that carries a
// secretKeyRef filled from c.AuthSecretStore (key defaults to the secret's
// name, as in Dapr). c itself is not modified. A reference without
// auth.secretStore, a reference without a name, or a failed lookup is an
// error naming the component, its file and the item.
func ResolveRefs(ctx context.Context, c resources.Component, get Getter) (resources.Component, error) {
	items, err := resolveItems(ctx, c.Metadata, c.AuthSecretStore, get)
	if err != nil {
		return c, fmt.Errorf("component %s (%s): %w", c.Name, c.Location(), err)
	}
	c.Metadata = items
	return c, nil
}

// ResolveEndpointRefs is ResolveRefs for an HTTPEndpoint: its headers and
// clientTLS documents given by secretKeyRef.
func ResolveEndpointRefs(ctx context.Context, e resources.HTTPEndpoint, get Getter) (resources.HTTPEndpoint, error) {
	wrap := func(err error) error {
		return fmt.Errorf("HTTPEndpoint %s (%s): %w", e.Name, resourceLocation(e.File, e.Line), err)
	}
	items, err := resolveItems(ctx, e.Headers, e.AuthSecretStore, get)
	if err != nil {
		return e, wrap(err)
	}
	e.Headers = items
	if e.ClientTLS != nil {
		tls := *e.ClientTLS
		for field, doc := range map[string]**resources.TLSDocument{"rootCA": &tls.RootCA, "certificate": &tls.Certificate, "privateKey": &tls.PrivateKey} {
			if *doc == nil || (*doc).SecretKeyRef == nil {
				continue
			}
			d := **doc
			v, err := resolveOne(ctx, "clientTLS."+field, d.SecretKeyRef, e.AuthSecretStore, get)
			if err != nil {
				return e, wrap(err)
			}
			d.Value = v
			*doc = &d
		}
		e.ClientTLS = &tls
	}
	return e, nil
}

func resourceLocation(file string, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

func resolveItems(ctx context.Context, in []resources.MetadataItem, store string, get Getter) ([]resources.MetadataItem, error) {
	if !slices.ContainsFunc(in, func(m resources.MetadataItem) bool { return m.SecretKeyRef != nil }) {
		return in, nil
	}
	out := slices.Clone(in)
	for i, m := range out {
		if m.SecretKeyRef == nil {
			continue
		}
		v, err := resolveOne(ctx, "metadata "+m.Name, m.SecretKeyRef, store, get)
		if err != nil {
			return nil, err
		}
		out[i].Value = v
	}
	return out, nil
}

func resolveOne(ctx context.Context, what string, ref *resources.SecretKeyRef, store string, get Getter) (string, error) {
	if ref.Name == "" {
		return "", fmt.Errorf("%s: secretKeyRef has no name", what)
	}
	if store == "" {
		return "", fmt.Errorf("%s: %w", what, ErrNoAuthSecretStore)
	}
	key := ref.Key
	if key == "" {
		key = ref.Name
	}
	v, err := get(ctx, store, ref.Name, key)
	if err != nil {
		return "", fmt.Errorf("%s: secretKeyRef %s/%s: %w", what, ref.Name, key, err)
	}
	return v, nil
}

// NeedsSecrets reports whether c has a secretKeyRef to resolve.
func NeedsSecrets(c resources.Component) bool {
	return slices.ContainsFunc(c.Metadata, func(m resources.MetadataItem) bool { return m.SecretKeyRef != nil })
}

// Order returns the components in provisioning order: secret stores first
// (those referencing another secret store through secretKeyRef after that
// store), then every other component, each group in its original order. A
// cycle between secret stores is an error.
func Order(cs []resources.Component) ([]resources.Component, error) {
	var stores, others []resources.Component
	for _, c := range cs {
		if c.Category() == "secretstores" {
			stores = append(stores, c)
		} else {
			others = append(others, c)
		}
	}
	out := make([]resources.Component, 0, len(cs))
	placed := map[string]bool{}
	isStore := map[string]bool{}
	for _, s := range stores {
		isStore[s.Name] = true
	}
	for len(stores) > 0 {
		var rest []resources.Component
		for _, s := range stores {
			dep := s.AuthSecretStore
			if !NeedsSecrets(s) || dep == "" || placed[dep] || !isStore[dep] {
				out = append(out, s)
				placed[s.Name] = true
			} else {
				rest = append(rest, s)
			}
		}
		if len(rest) == len(stores) {
			names := make([]string, len(rest))
			for i, s := range rest {
				names[i] = s.Name + " → " + s.AuthSecretStore
			}
			return nil, fmt.Errorf("secret stores reference each other in a cycle: %v", names)
		}
		stores = rest
	}
	return append(out, others...), nil
}
