package sqlitebusy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func TestBusy(t *testing.T) {
	for err, want := range map[error]bool{
		nil:                            false,
		errors.New("no such table: x"): false,
		errors.New("database is locked (5) (SQLITE_BUSY)"):                                true,
		fmt.Errorf("wrapped: %w", errors.New("database table is locked (SQLITE_LOCKED)")): true,
	} {
		if Busy(err) != want {
			t.Errorf("Busy(%v) = %v", err, !want)
		}
	}
}

// TestConcurrentStartUp opens one new file from 8 pools at once, each
// switching it to WAL and creating a table, as sidecars starting together do.
func TestConcurrentStartUp(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shared.db")
	dsn := file + "?_txlock=immediate&_busy_timeout=2000&_pragma=journal_mode(WAL)"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- Retry(ctx, func(ctx context.Context) error {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer func() { _ = tx.Rollback() }()
				if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)`); err != nil {
					return err
				}
				return tx.Commit()
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("start-up failed: %v", err)
		}
	}
}

func TestRetryGivesUpWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	busy := errors.New("database is locked (SQLITE_BUSY)")
	if err := Retry(ctx, func(context.Context) error { return busy }); err != busy {
		t.Fatalf("got %v, want the last busy error", err)
	}
}
