package statee2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/outrigger/outrigger/proxy/e2e/e2etest"
)

// TestSocketPluginStartedLater starts the sidecar first, with a state.sqlite
// component that no plugin binary provides (empty --plugins-path) and whose
// socket is not there yet; it then starts the state-sqlite binary
// standalone (no go-plugin cookie), which serves <sockets>/sqlite.sock. The
// sidecar, waiting up to the component's initTimeout, picks it up, becomes
// ready and serves state through it.
func TestSocketPluginStartedLater(t *testing.T) {
	t.Parallel()
	sockets, err := os.MkdirTemp("", "orsock") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockets) })
	c := sqliteComponent(t, "store")
	c.spec = "initTimeout: 20s"
	s := launchSidecar(t, sidecarOpts{resources: writeComponents(t, c),
		args: []string{"--sockets-path", sockets, "--plugins-path", t.TempDir()}})

	// The sidecar has bound its API port (it does so before provisioning
	// components) but must not be ready: its component has no plugin yet.
	e2etest.WaitFor(t, 15*time.Second, "the sidecar to bind its HTTP port", func() bool {
		if s.Exited() {
			t.Fatalf("sidecar exited while waiting for the socket plugin: %v", s.Err())
		}
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.httpPort), 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	if r, err := tryDo(http.MethodGet, s.URL("/v1.0/healthz"), nil, nil, 500*time.Millisecond); err == nil && r.status == http.StatusNoContent {
		t.Fatal("the sidecar is healthy before its component's plugin exists")
	}

	pcmd := exec.Command(sqlitePluginBin)
	pcmd.Env = e2etest.CleanEnv(nil, "DAPR_COMPONENTS_SOCKETS_FOLDER="+sockets)
	plugin := e2etest.StartProc(t, "state-sqlite (socket)", pcmd, e2etest.ProcOptions{})
	e2etest.WaitFor(t, 10*time.Second, "the plugin's socket sqlite.sock", func() bool {
		if plugin.Exited() {
			t.Fatalf("standalone plugin exited: %v", plugin.Err())
		}
		fi, err := os.Stat(filepath.Join(sockets, "sqlite.sock"))
		return err == nil && fi.Mode()&os.ModeSocket != 0
	})
	s.WaitHealthy(t, 25*time.Second)

	base := s.URL("/v1.0/state/store")
	if r := do(t, http.MethodPost, base, nil, []byte(`[{"key":"late","value":{"ok":true}}]`)); r.status != http.StatusNoContent {
		t.Fatalf("save through the socket plugin: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodGet, base+"/late", nil, nil); r.status != http.StatusOK || string(r.body) != `{"ok":true}` {
		t.Errorf("get through the socket plugin: %d %q", r.status, r.body)
	}
	p := s.plugin(t, "sqlite.sock")
	if p.Kind != "socket" || p.PID != plugin.Cmd.Process.Pid {
		t.Logf("plugin status %+v (standalone pid %d)", p, plugin.Cmd.Process.Pid)
	}
	if p.Kind != "socket" {
		t.Errorf("plugin sqlite.sock kind %q, want socket", p.Kind)
	}
}
