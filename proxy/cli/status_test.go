package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/admin"
	"github.com/outrigger/outrigger/proxy/hostreg"
)

type breakerRow struct {
	Target, State string
}

// serveAdmin serves the real admin handler with fixed pages on loopback and
// records a sidecar with that admin port under a private OUTRIGGER_HOME.
func serveAdmin(t *testing.T, appID string) {
	t.Helper()
	t.Setenv(hostreg.HomeEnv, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.New(map[string]admin.Page{
		"members":    func() any { return []map[string]any{{"appId": appID, "addr": "127.0.0.1:1"}} },
		"clusters":   func() any { return []map[string]any{{"appId": "b", "instance": "127.0.0.1:2", "ejected": true}} },
		"breakers":   func() any { return []breakerRow{{"apps.b", "open"}} },
		"plugins":    func() any { return []map[string]any{} },
		"components": func() any { return []map[string]any{{"name": "statestore", "type": "state.sqlite"}} },
	}, func() bool { return true }), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	remove, err := hostreg.Write(hostreg.Entry{AppID: appID, PID: os.Getpid(), HTTPPort: 3500,
		AdminPort: ln.Addr().(*net.TCPAddr).Port, Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
}

func TestStatusTable(t *testing.T) {
	serveAdmin(t, "orders")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "--app-id", "orders"}, &out, &errOut); code != 0 {
		t.Fatalf("status exited %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"Sidecar orders", "Members", "Clusters", "Breakers", "Plugins", "Components",
		"TARGET", "apps.b", "open", "EJECTED", "true", "statestore", "(none)"} {
		if !strings.Contains(got, want) {
			t.Errorf("status output lacks %q:\n%s", want, got)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	serveAdmin(t, "orders")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "-a", "orders", "-o", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("status -o json exited %d: %s", code, errOut.String())
	}
	var got []struct {
		AppID string `json:"appId"`
		Pages struct {
			Breakers []breakerRow     `json:"breakers"`
			Clusters []map[string]any `json:"clusters"`
			Plugins  []map[string]any `json:"plugins"`
		} `json:"pages"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, out.String())
	}
	if len(got) != 1 || got[0].AppID != "orders" || len(got[0].Pages.Breakers) != 1 ||
		got[0].Pages.Breakers[0] != (breakerRow{"apps.b", "open"}) || got[0].Pages.Clusters[0]["ejected"] != true ||
		got[0].Pages.Plugins == nil {
		t.Errorf("status -o json = %s", out.String())
	}
}

func TestStatusErrors(t *testing.T) {
	t.Setenv(hostreg.HomeEnv, t.TempDir())
	tests := []struct {
		name    string
		args    []string
		setup   func(t *testing.T)
		wantErr string
	}{
		{"no app id", []string{"status"}, nil, "give --app-id"},
		{"bad output", []string{"status", "-a", "x", "-o", "xml"}, nil, `unknown output format "xml"`},
		{"not running", []string{"status", "-a", "ghost"}, nil, `app id "ghost"`},
		{"no admin endpoint", []string{"status", "-a", "noadmin"}, func(t *testing.T) {
			remove, err := hostreg.Write(hostreg.Entry{AppID: "noadmin", PID: os.Getpid(), Started: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(remove)
		}, "has no admin endpoint"},
		{"admin endpoint gone", []string{"status", "-a", "gone"}, func(t *testing.T) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			port := ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			remove, err := hostreg.Write(hostreg.Entry{AppID: "gone", PID: os.Getpid(), AdminPort: port, Started: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(remove)
		}, "admin endpoint of gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("%v: exit %d, stderr %q; want a failure saying %q", tt.args, code, errOut.String(), tt.wantErr)
			}
		})
	}
}
