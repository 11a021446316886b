package main

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const fixture = `{
  "redisPassword": "pw",
  "connectionStrings": {"sql": "sql-cs", "mysql": "mysql-cs", "deep": {"x": "y"}},
  "ports": [6379, 5432.5],
  "flag": true,
  "nothing": null,
  "unicode ключ": "значение"
}`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConformanceSingleValued(t *testing.T) {
	path := writeFile(t, fixture)
	sdktest.ExerciseSecretStore(t, New, sdktest.SecretStoreCase{
		Metadata: sdk.Metadata{"secretsFile": path},
		Secrets: map[string]map[string]string{
			"redisPassword":            {"redisPassword": "pw"},
			"connectionStrings:sql":    {"connectionStrings:sql": "sql-cs"},
			"connectionStrings:deep:x": {"connectionStrings:deep:x": "y"},
			"ports:0":                  {"ports:0": "6379"},
			"ports:1":                  {"ports:1": "5432.5"},
			"flag":                     {"flag": "true"},
			"nothing":                  {"nothing": ""},
			"unicode ключ":             {"unicode ключ": "значение"},
		},
		BadMetadata: sdk.Metadata{"secretsFile": filepath.Join(t.TempDir(), "absent.json")},
	})
}

func TestConformanceMultiValued(t *testing.T) {
	path := writeFile(t, fixture)
	sdktest.ExerciseSecretStore(t, New, sdktest.SecretStoreCase{
		Metadata: sdk.Metadata{"secretsFile": path, "multiValued": "true", "nestedSeparator": "."},
		Secrets: map[string]map[string]string{
			"redisPassword":     {"redisPassword": "pw"},
			"connectionStrings": {"sql": "sql-cs", "mysql": "mysql-cs", "deep.x": "y"},
			"ports":             {"0": "6379", "1": "5432.5"},
			"flag":              {"flag": "true"},
		},
		MultiValued: true,
		BadMetadata: sdk.Metadata{"secretsFile": path, "multiValued": "maybe"},
	})
}

func TestSeparator(t *testing.T) {
	s := New()
	if err := s.Init(context.Background(), sdk.Metadata{"SecretsFile": writeFile(t, fixture), "NESTEDSEPARATOR": "__"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), "connectionStrings__deep__x", nil)
	if err != nil || !maps.Equal(got, map[string]string{"connectionStrings__deep__x": "y"}) {
		t.Fatalf("Get = (%v, %v)", got, err)
	}
}

func TestMissingSecret(t *testing.T) {
	s := New()
	if err := s.Init(context.Background(), sdk.Metadata{"secretsFile": writeFile(t, fixture)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(context.Background(), "connectionStrings", nil) // an object is not a secret when single-valued
	if !errors.Is(err, sdk.ErrSecretNotFound) || err.Error() != "secret connectionStrings not found" {
		t.Fatalf("err = %v", err)
	}
}

func TestInitErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		md   func(t *testing.T) sdk.Metadata
		want string
	}{
		"no file": {func(*testing.T) sdk.Metadata { return sdk.Metadata{} }, "secretsFile is required"},
		"absent file": {func(t *testing.T) sdk.Metadata {
			return sdk.Metadata{"secretsFile": filepath.Join(t.TempDir(), "x.json")}
		}, "reading secrets file"},
		"not json":      {func(t *testing.T) sdk.Metadata { return sdk.Metadata{"secretsFile": writeFile(t, "a=b")} }, "not a JSON object"},
		"array":         {func(t *testing.T) sdk.Metadata { return sdk.Metadata{"secretsFile": writeFile(t, `["a"]`)} }, "not a JSON object"},
		"null":          {func(t *testing.T) sdk.Metadata { return sdk.Metadata{"secretsFile": writeFile(t, `null`)} }, "not a JSON object"},
		"trailing data": {func(t *testing.T) sdk.Metadata { return sdk.Metadata{"secretsFile": writeFile(t, `{"a":"b"} {}`)} }, "data after"},
		"duplicate names": {func(t *testing.T) sdk.Metadata {
			return sdk.Metadata{"secretsFile": writeFile(t, `{"a:b":"1","a":{"b":"2"}}`)}
		}, `flatten to the name "a:b"`},
		"bad bool": {func(t *testing.T) sdk.Metadata {
			return sdk.Metadata{"secretsFile": writeFile(t, `{}`), "multiValued": "yes please"}
		}, "multiValued"},
	} {
		t.Run(name, func(t *testing.T) {
			err := New().Init(context.Background(), tc.md(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Init error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
