package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Store is the local.file secret store. Its secrets are fixed at Init.
type Store struct {
	multiValued bool
	// secrets maps a secret name to its key/value pairs.
	secrets map[string]map[string]string
}

// New returns an uninitialised store (the SDK calls it once per component instance).
func New() sdk.SecretStore { return &Store{} }

// config is the parsed component metadata (Dapr's names, matched case-insensitively as Dapr does).
type config struct {
	secretsFile     string
	nestedSeparator string
	multiValued     bool
}

func lookup(md sdk.Metadata, key string) string {
	if v, ok := md[key]; ok {
		return v
	}
	for k, v := range md {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func parse(md sdk.Metadata) (config, error) {
	c := config{secretsFile: lookup(md, "secretsFile"), nestedSeparator: lookup(md, "nestedSeparator")}
	if c.secretsFile == "" {
		return c, errors.New("metadata secretsFile is required: the path of the JSON file holding the secrets")
	}
	if c.nestedSeparator == "" {
		c.nestedSeparator = ":"
	}
	if v := strings.TrimSpace(lookup(md, "multiValued")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("metadata multiValued=%q: want true or false", v)
		}
		c.multiValued = b
	}
	return c, nil
}

// Init reads and flattens the secrets file.
func (s *Store) Init(_ context.Context, md sdk.Metadata) error {
	c, err := parse(md)
	if err != nil {
		return err
	}
	doc, err := readJSON(c.secretsFile)
	if err != nil {
		return err
	}
	secrets := map[string]map[string]string{}
	if c.multiValued {
		// One level of multi-valued secrets: each top-level object (or
		// array) is one secret whose keys are its flattened members.
		for name, v := range doc {
			switch v.(type) {
			case map[string]any, []any:
				kv := map[string]string{}
				if err := flatten(kv, "", v, c.nestedSeparator); err != nil {
					return fmt.Errorf("%s: secret %q: %w", c.secretsFile, name, err)
				}
				secrets[name] = kv
			default:
				secrets[name] = map[string]string{name: scalar(v)}
			}
		}
	} else {
		flat := map[string]string{}
		if err := flatten(flat, "", doc, c.nestedSeparator); err != nil {
			return fmt.Errorf("%s: %w", c.secretsFile, err)
		}
		for name, v := range flat {
			secrets[name] = map[string]string{name: v}
		}
	}
	s.multiValued, s.secrets = c.multiValued, secrets
	return nil
}

// readJSON reads a file holding one JSON object, keeping numbers as written.
func readJSON(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading secrets file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("secrets file %s: not a JSON object: %w", path, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("secrets file %s: not a JSON object (null)", path)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("secrets file %s: data after the JSON object", path)
	}
	return doc, nil
}

// flatten adds v's leaves to out under names joined with sep (array items
// by index). Two leaves with the same flattened name are an error.
func flatten(out map[string]string, prefix string, v any, sep string) error {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + sep + k
	}
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if err := flatten(out, join(k), e, sep); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := flatten(out, join(strconv.Itoa(i)), e, sep); err != nil {
				return err
			}
		}
	default:
		if _, dup := out[prefix]; dup {
			return fmt.Errorf("two values flatten to the name %q (nestedSeparator %q)", prefix, sep)
		}
		out[prefix] = scalar(v)
	}
	return nil
}

// scalar renders a JSON leaf: strings as is, numbers as written, booleans
// as true/false, null as "".
func scalar(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return ""
	default:
		return fmt.Sprint(t)
	}
}

// MultipleKeyValuesPerSecret reports the multiValued setting.
func (s *Store) MultipleKeyValuesPerSecret() bool { return s.multiValued }

// Get returns one secret.
func (s *Store) Get(_ context.Context, name string, _ map[string]string) (map[string]string, error) {
	kv, ok := s.secrets[name]
	if !ok {
		return nil, sdk.SecretNotFound(name)
	}
	return maps.Clone(kv), nil
}

// BulkGet returns every secret.
func (s *Store) BulkGet(context.Context, map[string]string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(s.secrets))
	for name, kv := range s.secrets {
		out[name] = maps.Clone(kv)
	}
	return out, nil
}
