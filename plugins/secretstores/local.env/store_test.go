package main

import (
	"context"
	"maps"
	"testing"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

func TestConformanceWithPrefix(t *testing.T) {
	t.Setenv("S1TEST_DB_PASSWORD", "s3cret=x=y")
	t.Setenv("S1TEST_EMPTY", "")
	sdktest.ExerciseSecretStore(t, New, sdktest.SecretStoreCase{
		Metadata: sdk.Metadata{"prefix": "S1TEST_"},
		Secrets: map[string]map[string]string{
			"DB_PASSWORD": {"DB_PASSWORD": "s3cret=x=y"},
			"EMPTY":       {"EMPTY": ""},
		},
		MissingEmpty: true,
	})
}

func TestConformanceWithoutPrefix(t *testing.T) {
	t.Setenv("S1TEST_PLAIN", "v")
	sdktest.ExerciseSecretStore(t, New, sdktest.SecretStoreCase{
		Secrets:      map[string]map[string]string{"S1TEST_PLAIN": {"S1TEST_PLAIN": "v"}},
		MissingEmpty: true,
	})
}

func TestPrefixStrippedAndScoped(t *testing.T) {
	t.Setenv("S1PFX_A", "1")
	t.Setenv("S1PFX_", "the prefix alone is no secret")
	t.Setenv("OTHER_S1PFX_B", "2")
	s := New()
	if err := s.Init(context.Background(), sdk.Metadata{"Prefix": "S1PFX_"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.BulkGet(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"A": {"A": "1"}}
	if !maps.EqualFunc(all, want, maps.Equal) {
		t.Fatalf("BulkGet = %v, want %v", all, want)
	}
}

func TestReservedVariablesHidden(t *testing.T) {
	for _, name := range []string{"DAPR_API_TOKEN", "dapr_http_port", "APP_API_TOKEN", sdk.Handshake.MagicCookieKey, "PLUGIN_MIN_PORT"} {
		t.Setenv(name, "hidden")
	}
	t.Setenv("S1TEST_VISIBLE", "shown")
	s := New()
	if err := s.Init(context.Background(), sdk.Metadata{}); err != nil {
		t.Fatal(err)
	}
	all, err := s.BulkGet(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"DAPR_API_TOKEN", "dapr_http_port", "APP_API_TOKEN", sdk.Handshake.MagicCookieKey, "PLUGIN_MIN_PORT"} {
		if _, ok := all[name]; ok {
			t.Errorf("BulkGet returns reserved variable %s", name)
		}
		got, _ := s.Get(context.Background(), name, nil)
		if got[name] != "" {
			t.Errorf("Get(%s) = %q, want empty", name, got[name])
		}
	}
	if all["S1TEST_VISIBLE"]["S1TEST_VISIBLE"] != "shown" {
		t.Errorf("BulkGet lacks S1TEST_VISIBLE: %v", all["S1TEST_VISIBLE"])
	}
}
