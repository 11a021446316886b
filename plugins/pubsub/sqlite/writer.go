package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// maxGroupCommit bounds the writes committed in one transaction.
const maxGroupCommit = 256

var errClosed = errors.New("pubsub.sqlite: broker closed")

// writeOp is one write waiting for the group-commit loop.
type writeOp struct {
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

// write runs fn inside a BEGIN IMMEDIATE transaction shared with whatever
// other writes (publishes, acks, nacks) are waiting at the same moment:
// group commit, one lock acquisition and one WAL commit for all of them.
// If the shared transaction fails, each write is retried alone, so one bad
// write cannot fail the others.
func (b *Broker) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	op := writeOp{fn: fn, done: make(chan error, 1)}
	select {
	case b.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.writerDone:
		return errClosed
	}
	select {
	case err := <-op.done:
		return err
	case <-b.writerDone:
		select {
		case err := <-op.done:
			return err
		default:
			return errClosed
		}
	}
}

// writeLoop commits queued writes in groups until stop is closed.
func (b *Broker) writeLoop() {
	defer close(b.writerDone)
	for {
		var batch []writeOp
		select {
		case <-b.stop:
			return
		case op := <-b.ops:
			batch = append(batch, op)
		}
	more:
		for len(batch) < maxGroupCommit {
			select {
			case op := <-b.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		err := b.inTx(func(ctx context.Context, tx *sql.Tx) error {
			for _, op := range batch {
				if err := op.fn(ctx, tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil || len(batch) == 1 {
			for _, op := range batch {
				op.done <- err
			}
			continue
		}
		for _, op := range batch {
			op.done <- b.inTx(op.fn)
		}
	}
}

// inTx runs fn in one BEGIN IMMEDIATE transaction (the write lock is taken
// first, waiting up to busyTimeout, so it never fails on a snapshot another
// process made stale).
func (b *Broker) inTx(fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.timeout)
	defer cancel()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// exec runs one write statement through the group-commit loop.
func (b *Broker) exec(stmt string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.timeout+time.Second)
	defer cancel()
	return b.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, stmt, args...)
		return err
	})
}
