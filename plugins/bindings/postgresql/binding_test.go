package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

const pgConn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func needPostgres(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:5432", 2*time.Second)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at 127.0.0.1:5432 (%v); start it (trust auth, database test), e.g.:\n\tservice postgresql start", err)
	}
	_ = c.Close()
}

func TestConformance(t *testing.T) {
	needPostgres(t)
	table := "bindings_conf_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "_")
	sql := func(s string) map[string]string { return map[string]string{"sql": strings.ReplaceAll(s, "{T}", table)} }
	withParams := func(s, p string) map[string]string { m := sql(s); m["params"] = p; return m }
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return New() }, sdktest.OutputBindingCase{
		Metadata:    sdk.Metadata{"connectionString": pgConn},
		BadMetadata: sdk.Metadata{"connectionString": "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"},
		Operations:  []string{"exec", "query", "close"},
		Calls: []sdktest.OutputCall{
			{Name: "create table", Operation: "exec", Metadata: sql("CREATE TABLE {T} (id int primary key, name text)")},
			{Name: "insert", Operation: "exec", Metadata: withParams("INSERT INTO {T} VALUES ($1, $2), ($3, $4)", `[1, "a", 2, "b"]`),
				Check: func(t *testing.T, r *sdk.InvokeResponse) {
					if r.Metadata["rows-affected"] != "2" || r.Metadata["operation"] != "exec" || r.Metadata["duration"] == "" {
						t.Errorf("metadata %v", r.Metadata)
					}
				}},
			{Name: "query", Operation: "query", Metadata: sql("SELECT id, name FROM {T} ORDER BY id"), WantData: []byte(`[[1,"a"],[2,"b"]]`)},
			{Name: "query params", Operation: "query", Metadata: withParams("SELECT name FROM {T} WHERE id = $1", `[2]`), WantData: []byte(`[["b"]]`)},
			{Name: "query none", Operation: "query", Metadata: withParams("SELECT name FROM {T} WHERE id = $1", `[9]`), WantData: []byte(`[]`)},
			{Name: "sql error", Operation: "exec", Metadata: sql("INSERT INTO {T} VALUES (1, 'dup')"), WantCode: codes.Internal},
			{Name: "no sql", Operation: "exec", WantCode: codes.InvalidArgument},
			{Name: "bad params", Operation: "query", Metadata: withParams("SELECT 1", `{"a":1}`), WantCode: codes.InvalidArgument},
			{Name: "drop table", Operation: "exec", Metadata: sql("DROP TABLE {T}")},
			{Name: "close", Operation: "close"},
			{Name: "after close", Operation: "query", Metadata: sql("SELECT 1"), WantCode: codes.Internal},
		},
	})
}
