package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	md := sdk.Metadata{"connectionString": filepath.Join(t.TempDir(), "locks.db")}
	f := func() sdk.LockStore { return New(nil) }
	// A and B open the file separately, as two plugin processes would.
	sdktest.ExerciseLock(t, f, f, md)
}

func TestConformanceRollbackJournal(t *testing.T) {
	md := sdk.Metadata{"connectionString": filepath.Join(t.TempDir(), "locks.db"), "disableWAL": "true", "tableName": "my_locks"}
	f := func() sdk.LockStore { return New(nil) }
	sdktest.ExerciseLock(t, f, f, md)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      sdk.Metadata
		wantErr string
	}{
		{"minimal", sdk.Metadata{"connectionString": "x.db"}, ""},
		{"all", sdk.Metadata{"connectionString": "x.db", "tableName": "l", "timeout": "5", "busyTimeout": "1s", "cleanupInterval": "0", "disableWAL": "true"}, ""},
		{"case-insensitive keys", sdk.Metadata{"ConnectionString": "x.db"}, ""},
		{"no connection string", sdk.Metadata{}, "connectionString"},
		{"bad table", sdk.Metadata{"connectionString": "x.db", "tableName": "locks; drop"}, "tableName"},
		{"bad timeout", sdk.Metadata{"connectionString": "x.db", "timeout": "soon"}, "timeout"},
		{"zero timeout", sdk.Metadata{"connectionString": "x.db", "timeout": "0"}, "timeout"},
		{"negative busy", sdk.Metadata{"connectionString": "x.db", "busyTimeout": "-1s"}, "busyTimeout"},
		{"bad bool", sdk.Metadata{"connectionString": "x.db", "disableWAL": "maybe"}, "disableWAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.md)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestSweepRemovesExpiredRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks.db")
	s := New(nil)
	ctx := context.Background()
	if err := s.Init(ctx, sdk.Metadata{"connectionString": path}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.TryLock(ctx, &sdk.TryLockRequest{ResourceID: "r", LockOwner: "o", ExpiryInSeconds: 1}); err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Second) }
	if err := s.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM locks`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows left after sweeping expired leases", n)
	}
}

const childEnv = "LOCK_SQLITE_CHILD_DB"

// TestChildTakesLock is run by TestLeaseAcrossProcesses in a child process:
// it takes a 2 s lease and exits.
func TestChildTakesLock(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper: runs only as a child of TestLeaseAcrossProcesses")
	}
	s := New(nil)
	if err := s.Init(context.Background(), sdk.Metadata{"connectionString": path}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ok, err := s.TryLock(context.Background(), &sdk.TryLockRequest{ResourceID: "job", LockOwner: "child", ExpiryInSeconds: 2})
	if err != nil || !ok {
		t.Fatalf("child TryLock: %v %v", ok, err)
	}
}

// TestLeaseAcrossProcesses: a lease taken by another process is honoured
// until it expires, then this process can take it; the expired owner's
// unlock reports LOCK_BELONGS_TO_OTHERS.
func TestLeaseAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks.db")
	s := New(nil)
	ctx := context.Background()
	if err := s.Init(ctx, sdk.Metadata{"connectionString": path}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildTakesLock$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestChildTakesLock") {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	taken := time.Now() // the child's lease began no later than this
	if ok, err := s.TryLock(ctx, &sdk.TryLockRequest{ResourceID: "job", LockOwner: "parent", ExpiryInSeconds: 10}); err != nil || ok {
		t.Fatalf("parent got a lease the child holds: ok=%v err=%v", ok, err)
	}
	if st, err := s.Unlock(ctx, &sdk.UnlockRequest{ResourceID: "job", LockOwner: "parent"}); err != nil || st != sdk.LockBelongsToOthers {
		t.Fatalf("parent unlock of the child's lease: %v %v", st, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := s.TryLock(ctx, &sdk.TryLockRequest{ResourceID: "job", LockOwner: "parent", ExpiryInSeconds: 10})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child's 2 s lease was never released")
		}
		time.Sleep(50 * time.Millisecond) // polling a lease; there is no readiness signal
	}
	if held := time.Since(taken); held > 5*time.Second {
		t.Errorf("took %s to get an expired 2 s lease", held)
	}
	if st, err := s.Unlock(ctx, &sdk.UnlockRequest{ResourceID: "job", LockOwner: "child"}); err != nil || st != sdk.LockBelongsToOthers {
		t.Fatalf("expired owner's unlock: %v %v, want LOCK_BELONGS_TO_OTHERS", st, err)
	}
}
