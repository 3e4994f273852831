package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storekit"
)

// pollInterval is how often the listener compares Head with what it saw
// last, so that a lost notification, a listener outage or a commit made
// visible late by a long-running transaction elsewhere only delays a signal.
const pollInterval = time.Second

// notifyGap is the least time between two pg_notify calls of one store.
const notifyGap = 2 * time.Millisecond

// Notify implements eventsource.Notifier. All Notify channels of a store
// share one dedicated listener connection (LISTEN on the store's channel,
// outside the pool), opened on the first call and reconnected after a
// failure. Besides notifications, the listener polls Head once a second while
// anyone listens and signals when it moved: a lost notification delays a
// signal by at most that much, never loses it. With WithNotify(false), the
// poll alone drives the signals.
//
// A signal means "read the global log again": it may stand for many appends,
// and it can arrive before the records are visible to ReadAll (when an older
// transaction in the cluster is still running); the Head poll sends another
// once they are.
func (s *Store) Notify(ctx context.Context) (<-chan struct{}, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	ch := make(chan struct{}, 1)
	s.notifyMu.Lock()
	if s.closed.Load() {
		s.notifyMu.Unlock()
		return nil, eventsource.ErrClosed
	}
	s.subs[ch] = struct{}{}
	if s.listenStop == nil {
		lctx, stop := context.WithCancel(context.Background())
		s.listenStop, s.listenDone = stop, make(chan struct{})
		go s.listen(lctx, s.listenDone)
	}
	s.notifyMu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		s.notifyMu.Lock()
		defer s.notifyMu.Unlock()
		if _, ok := s.subs[ch]; ok { // Close may have closed it already
			delete(s.subs, ch)
			close(ch)
		}
	}()
	return ch, nil
}

// appended is called after an Append committed: it signals this store's
// Notify channels at once and has the notifier goroutine send a pg_notify
// for other processes. Appends that complete while one pg_notify is on its
// way share the next one, and it runs in a transaction of its own: NOTIFY
// inside the append's transaction would serialise the commits of all
// appends (PostgreSQL takes a database-wide lock at the commit of a
// notifying transaction, held while the commit is flushed).
func (s *Store) appended() {
	s.broadcast()
	if !s.cfg.notify {
		return
	}
	s.notifierOnce.Do(func() {
		s.notifierDone = make(chan struct{})
		go s.notifier(s.notifierDone)
	})
	select {
	case s.kick <- struct{}{}:
	default: // one is pending already
	}
}

func (s *Store) notifier(done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-s.closing:
			return
		case <-s.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := s.pool.Exec(ctx, s.q.notify); err != nil {
			// Listeners' Head polls will notice the appends instead.
			s.log.WarnContext(ctx, "postgres: pg_notify failed", "err", err)
		}
		cancel()
		// Appends that complete during the pause share the next pg_notify,
		// so a steady stream of appends costs at most one per notifyGap.
		t := time.NewTimer(notifyGap)
		select {
		case <-s.closing:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// broadcast signals every Notify channel that has no signal pending.
func (s *Store) broadcast() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Store) listening() bool {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return len(s.subs) > 0
}

// listen runs until ctx ends: it waits for notifications on a dedicated
// connection and polls Head, broadcasting what it learns.
func (s *Store) listen(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	var head uint64
	var known bool
	var polled time.Time
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if conn == nil && s.cfg.notify {
			c, err := s.connectListener(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.WarnContext(ctx, "postgres: listener cannot connect; polling meanwhile", "err", err, "retry_in", backoff)
				_ = storekit.Sleep(ctx, backoff)
				backoff = min(2*backoff, 5*time.Second)
			} else {
				conn, backoff = c, 100*time.Millisecond
				s.broadcast() // something may have happened while we were away
			}
		}
		if conn != nil {
			wctx, cancel := context.WithTimeout(ctx, pollInterval)
			_, err := conn.WaitForNotification(wctx)
			cancel()
			switch {
			case err == nil:
				s.broadcast()
			case ctx.Err() != nil:
				return
			case pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded):
				// a quiet second
			default:
				s.log.WarnContext(ctx, "postgres: listener connection lost; reconnecting", "err", err)
				closeConn(conn)
				conn = nil
			}
		} else if !s.cfg.notify {
			_ = storekit.Sleep(ctx, pollInterval)
		}
		if time.Since(polled) >= pollInterval && s.listening() {
			polled = time.Now()
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			h, err := s.head(pctx, false)
			cancel()
			if err == nil {
				if known && uint64(h) != head {
					s.broadcast()
				}
				head, known = uint64(h), true
			}
		}
	}
}

func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.q.channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
