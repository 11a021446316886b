package hostreg

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestWriteListFindRemove(t *testing.T) {
	home := t.TempDir()
	t.Setenv(HomeEnv, home)

	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	remove, err := Write(Entry{AppID: "orders", HTTPPort: 3500, GRPCPort: 50001, AppPort: 5000, Command: "python3 app.py", Started: started})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	path := filepath.Join(home, "run", "orders-"+itoa(os.Getpid())+".json")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("registry file missing: %v", err)
	}
	// A second sidecar (a different live pid: our parent) with another app id.
	if _, err := Write(Entry{AppID: "frontend", PID: os.Getppid(), HTTPPort: 3600, Started: started.Add(time.Second)}); err != nil {
		t.Fatalf("Write frontend: %v", err)
	}

	all, err := List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(all) != 2 || all[0].AppID != "orders" || all[1].AppID != "frontend" {
		t.Fatalf("List = %+v, want orders then frontend", all)
	}
	if got := all[0]; got.PID != os.Getpid() || got.HTTPPort != 3500 || !got.Started.Equal(started) || got.Command != "python3 app.py" {
		t.Fatalf("entry round trip: got %+v", got)
	}

	e, err := Find("frontend")
	if err != nil || e.HTTPPort != 3600 {
		t.Fatalf("Find(frontend) = %+v, %v", e, err)
	}
	if _, err := Find("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find(nope) error = %v, want ErrNotFound", err)
	}

	// Rewriting replaces the entry in place.
	if _, err := Write(Entry{AppID: "orders", HTTPPort: 3500, AppPID: 42, Started: started}); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	if e, _ := Find("orders"); e.AppPID != 42 {
		t.Fatalf("rewrite not visible: %+v", e)
	}

	remove()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("remove left the file: %v", err)
	}
	if _, err := Find("orders"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after remove Find error = %v", err)
	}
}

func TestListDropsDeadAndJunk(t *testing.T) {
	home := t.TempDir()
	t.Setenv(HomeEnv, home)

	// A pid that certainly is dead: a finished, reaped child.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("run true: %v", err)
	}
	dead := cmd.Process.Pid
	if _, err := Write(Entry{AppID: "ghost", PID: dead}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	dir := filepath.Join(home, "run")
	if err := os.WriteFile(filepath.Join(dir, "junk.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}

	all, err := List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(all) != 0 {
		t.Fatalf("List = %+v, want none", all)
	}
	if _, err := os.Stat(filepath.Join(dir, "ghost-"+itoa(dead)+".json")); !os.IsNotExist(err) {
		t.Fatalf("stale entry not cleaned: %v", err)
	}
}

func TestListWithoutDirectory(t *testing.T) {
	t.Setenv(HomeEnv, filepath.Join(t.TempDir(), "absent"))
	all, err := List()
	if err != nil || len(all) != 0 {
		t.Fatalf("List on a missing dir = %v, %v; want empty, nil", all, err)
	}
}

func TestWriteRejectsBadAppID(t *testing.T) {
	t.Setenv(HomeEnv, t.TempDir())
	for _, id := range []string{"", "a/b", "..", `a\b`} {
		if _, err := Write(Entry{AppID: id}); err == nil {
			t.Errorf("Write(app id %q) succeeded, want error", id)
		}
	}
}

func TestHomeDefault(t *testing.T) {
	t.Setenv(HomeEnv, "")
	t.Setenv("HOME", "/tmp/somebody")
	h, err := Home()
	if err != nil || h != "/tmp/somebody/.outrigger" {
		t.Fatalf("Home() = %q, %v", h, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
