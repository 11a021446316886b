package main

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Poll intervals of PRAGMA data_version: fast right after a change, backing
// off to pollMax while the database is quiet (bounds delivery latency from
// other processes at pollMax and idle cost at 1/pollMax cheap queries per
// second, and only while something is subscribed).
const (
	pollMin = 2 * time.Millisecond
	pollMax = 16 * time.Millisecond
)

// watcher tells subscriptions that the database changed: at once for this
// process's own commits (fire), and for other processes' commits by polling
// PRAGMA data_version on a dedicated connection (it changes whenever another
// connection commits).
type watcher struct {
	mu   sync.Mutex
	ch   chan struct{} // closed and replaced on every change
	subs int
	wake chan struct{} // nudges poll when the first subscription arrives
}

func newWatcher() *watcher {
	return &watcher{ch: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// changed returns a channel closed at the next change.
func (w *watcher) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *watcher) fire() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

func (w *watcher) subscribe() {
	w.mu.Lock()
	w.subs++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) unsubscribe() {
	w.mu.Lock()
	w.subs--
	w.mu.Unlock()
}

func (w *watcher) active() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.subs > 0
}

// poll runs until stop is closed. It takes its own connection of db when
// the first subscription arrives (an idle broker holds none) and closes it
// on the way out.
func (w *watcher) poll(db *sql.DB, stop <-chan struct{}) {
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	var last int64 = -1
	interval := pollMax
	for {
		if !w.active() {
			select {
			case <-stop:
				return
			case <-w.wake:
				continue
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var err error
		if conn == nil {
			conn, err = db.Conn(ctx)
		}
		var v int64
		if err == nil {
			err = conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
		}
		cancel()
		if err != nil {
			interval = pollMax
			continue
		}
		if v != last {
			if last != -1 {
				w.fire()
			}
			last = v
			interval = pollMin
			continue
		}
		interval = min(interval*2, pollMax)
	}
}
