package mysql

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/eventsource-go/eventsource"
)

// Scavenge implements eventsource.Scavenger: for each stream with a rule or
// a delete ({prefix}stream_rules rows whose retention is not zero), in
// stream ID order after opts.After, one transaction locks the stream's row
// and rules and deletes from {prefix}events the records the readers' own
// visibility test (at the server's clock) leaves out. That frees their event
// IDs; their positions stay taken (the counter never goes back), and the
// stream's version stays in {prefix}streams, so appends continue after it.
// The context is checked between streams: cancelled, Scavenge returns what
// it did so far with the context's error.
func (s *Store) Scavenge(ctx context.Context, opts eventsource.ScavengeOptions) (eventsource.ScavengeResult, error) {
	var res eventsource.ScavengeResult
	if err := s.ready(ctx); err != nil {
		return res, err
	}
	for after := opts.After; ; {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ids, err := s.ruledStreams(ctx, after)
		if err != nil {
			return res, fmt.Errorf("mysql: scavenge: list streams with rules after %q: %w", after, err)
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			n, err := s.scavengeStream(ctx, id)
			if err != nil {
				return res, fmt.Errorf("mysql: scavenge stream %q: %w", id, err)
			}
			res.Streams++
			res.Removed += n
			res.Last = id
			if opts.Progress != nil {
				opts.Progress(res)
			}
		}
		if len(ids) < s.cfg.batch {
			return res, nil
		}
		after = ids[len(ids)-1]
	}
}

func (s *Store) ruledStreams(ctx context.Context, after string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q.ruledStreams, after, s.cfg.batch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// scavengeStream removes one stream's retired records in a transaction that
// locks the stream's row first, as appends and lifecycle writes do: appends
// to the stream wait (before they take the position counter) and its rules
// stay as they are until it commits. It reports how many records it
// removed.
func (s *Store) scavengeStream(ctx context.Context, stream string) (n int64, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var head int64
		if err := tx.QueryRowContext(ctx, s.q.lockScavenge, stream).Scan(&head); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, s.q.scavenge, stream)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return n, err
}
