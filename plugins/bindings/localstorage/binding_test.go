package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	outside := filepath.Join(filepath.Dir(root), "secret.txt")
	if err := os.WriteFile(outside, []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	md := func(name string) map[string]string { return map[string]string{"fileName": name} }
	bad := codes.InvalidArgument
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return New() }, sdktest.OutputBindingCase{
		Metadata:    sdk.Metadata{"rootPath": root},
		BadMetadata: sdk.Metadata{},
		Operations:  []string{"create", "get", "list", "delete"},
		Calls: []sdktest.OutputCall{
			{Name: "create", Operation: "create", Data: []byte("hello"), Metadata: md("a.txt"), WantData: []byte(`{"fileName":"a.txt"}`)},
			{Name: "create nested, JSON string unquoted", Operation: "create", Data: []byte(`"hi there"`), Metadata: md("d/e/b.txt")},
			{Name: "get", Operation: "get", Metadata: md("a.txt"), WantData: []byte("hello")},
			{Name: "get nested", Operation: "get", Metadata: md("d/e/b.txt"), WantData: []byte("hi there")},
			{Name: "create without a name", Operation: "create", Data: []byte("x"), Check: func(t *testing.T, r *sdk.InvokeResponse) {
				var v map[string]string
				if err := json.Unmarshal(r.Data, &v); err != nil || len(v["fileName"]) != 32 {
					t.Errorf("answer %s", r.Data)
				}
			}},
			{Name: "list", Operation: "list", Check: func(t *testing.T, r *sdk.InvokeResponse) {
				var files []string
				if err := json.Unmarshal(r.Data, &files); err != nil || !slices.Contains(files, "a.txt") || !slices.Contains(files, "d/e/b.txt") || len(files) != 4 {
					t.Errorf("list = %s", r.Data)
				}
			}},
			{Name: "list dir", Operation: "list", Metadata: md("d"), WantData: []byte(`["d/e/b.txt"]`)},
			{Name: "delete", Operation: "delete", Metadata: md("a.txt")},
			{Name: "get deleted", Operation: "get", Metadata: md("a.txt"), WantCode: codes.Internal},
			{Name: "delete missing", Operation: "delete", Metadata: md("a.txt"), WantCode: codes.Internal},
			{Name: "traversal create", Operation: "create", Data: []byte("x"), Metadata: md("../evil.txt"), WantCode: bad},
			{Name: "traversal get", Operation: "get", Metadata: md("d/../../secret.txt"), WantCode: bad},
			{Name: "absolute path", Operation: "get", Metadata: md(outside), WantCode: bad},
			{Name: "symlink escape", Operation: "get", Metadata: md("link"), WantCode: codes.Internal},
			{Name: "get without a name", Operation: "get", WantCode: bad},
		},
	})
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "evil.txt")); err == nil {
		t.Fatal("a file was written outside rootPath")
	}
}
