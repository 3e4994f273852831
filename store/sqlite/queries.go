package sqlite

import (
	"sort"
	"strings"

	"github.com/eventsource-go/eventsource"
)

// queries holds the store's SQL, built once from the table prefix.
type queries struct {
	rule, insertEvent, moveCut, writeRule, byEventID, idsAt, stream, head, list string
	ruled, scavenge, keepHead, deleteSnapshots                                  string
	selectAll, visible                                                          string

	// Inline projections (inline.go).
	inlineCreate, inlineReset, inlinePosition, inlineMove, inlineRecords string
}

const columns = `position, stream_id, version, event_id, type, codec, data, metadata, recorded_at`

func newQueries(p string) queries {
	ev, rules := p+"events", p+"stream_rules"
	// active is the condition of migration 005's partial index: a rules
	// row that can still hide a stored record.
	const active = `(max_age > 0 OR since > 0 OR (cut > 1 AND cut > gone))`
	// oldest is the recorded time (Unix nanoseconds) before which a rules
	// row r retires records, at ?now: storekit.Retention.Oldest.
	oldest := func(r, now string) string {
		return `max(` + r + `.since, CASE WHEN ` + r + `.max_age > 0 THEN ` + now + ` - ` + r + `.max_age ELSE 0 END)`
	}
	q := queries{
		// A stream's version is the larger of its newest event's, read
		// from the (stream_id, version) index, and the head its rules row
		// keeps (which a scavenge does not remove): no second table to
		// write per append. Both are point lookups; a stream with no
		// rules row reads NULLs for the rest.
		rule: `SELECT (SELECT coalesce(max(version), 0) FROM ` + ev + ` WHERE stream_id = ?1),
			r.meta, r.meta_version, r.max_count, r.cut, r.max_age, r.since, r.head
			FROM (SELECT 1) LEFT JOIN ` + rules + ` r ON r.stream_id = ?1`,
		insertEvent: `INSERT INTO ` + ev + ` (stream_id, version, event_id, type, codec, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		moveCut:     `UPDATE ` + rules + ` SET cut = ?2, max_age = ?3, since = ?4, head = ?5 WHERE stream_id = ?1`,
		writeRule: `INSERT OR REPLACE INTO ` + rules + ` (stream_id, meta, meta_version, max_count, cut, max_age, since, head)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		byEventID: `SELECT stream_id, version, position FROM ` + ev + ` WHERE event_id = ?`,
		idsAt:     `SELECT event_id, position FROM ` + ev + ` WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version`,
		// A stream's page starts at the cut (an index seek past what is
		// retired) and leaves out what its age retires, reading the rule
		// in the same statement: each page sees the rules of its own
		// snapshot, so a MaxCount window never shows more than its count.
		stream: `SELECT ` + columns + ` FROM ` + ev + ` WHERE stream_id = ?1
			AND version BETWEEN max(?2, coalesce((SELECT cut FROM ` + rules + ` WHERE stream_id = ?1), 1)) AND ?3
			AND recorded_at >= coalesce((SELECT ` + oldest("r", "?4") + ` FROM ` + rules + ` r WHERE r.stream_id = ?1), 0)
			ORDER BY version LIMIT ?5`,
		selectAll: `SELECT ` + columns + ` FROM ` + ev + ` WHERE position >= ?`,
		// A record of the global log is left out when its stream's rules
		// retire it: one primary-key lookup per record, skipped
		// altogether (an EXISTS SQLite evaluates once per statement, here
		// over the partial index of active rows) while no rules row is
		// active (migration 005: one that can still hide a stored record).
		visible: ` AND (NOT EXISTS (SELECT 1 FROM ` + rules + ` WHERE ` + active + `) OR NOT EXISTS (SELECT 1 FROM ` + rules + ` r WHERE r.stream_id = ` + ev + `.stream_id
			AND (` + ev + `.version < r.cut OR ` + ev + `.recorded_at < ` + oldest("r", "?") + `)))`,
		// Positions are never reused: the head is AUTOINCREMENT's, which
		// neither a scavenge nor the removal of the newest records lowers.
		head: `SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = '` + ev + `'`,
		// Streams without a rules row, from the events index (their
		// newest version per stream), and streams with one, from the
		// rules table (leaving out the deleted ones), merged in ID order.
		// Each side is limited to a page on its own: SQLite sorts a
		// grouped side of a compound in a temporary b-tree, so it must
		// stay a page long.
		list: `SELECT * FROM (SELECT stream_id, max(version) FROM ` + ev + ` e WHERE stream_id > ?1 AND substr(stream_id, 1, ?2) = ?3
				GROUP BY stream_id HAVING NOT EXISTS (SELECT 1 FROM ` + rules + ` r WHERE r.stream_id = e.stream_id)
				ORDER BY stream_id LIMIT ?4)
			UNION ALL
			SELECT * FROM (SELECT stream_id, h FROM (SELECT stream_id, cut, max(head, coalesce((SELECT max(version) FROM ` + ev + ` e WHERE e.stream_id = r.stream_id), 0)) AS h
				FROM ` + rules + ` r WHERE stream_id > ?1 AND substr(stream_id, 1, ?2) = ?3)
				WHERE cut <= h ORDER BY stream_id LIMIT ?4)
			ORDER BY 1 LIMIT ?4`,
		ruled:    `SELECT stream_id FROM ` + rules + ` WHERE stream_id > ? AND (cut > 1 OR max_age > 0 OR since > 0) ORDER BY stream_id LIMIT ?`,
		scavenge: `DELETE FROM ` + ev + ` WHERE stream_id = ? AND (version < ? OR recorded_at < ?)`,
		// After a scavenge nothing below the cut is stored, and the row
		// becomes inert unless a later append can land below the cut (a
		// cut past the end, as TruncateBefore 100 on a stream at 6 sets;
		// a tombstoned stream takes no appends).
		keepHead: `UPDATE ` + rules + ` SET head = max(head, ?2),
			gone = CASE WHEN cut <= max(head, ?2) + 1 OR cut = 9223372036854775807 THEN cut ELSE gone END WHERE stream_id = ?1`,
		deleteSnapshots: `DELETE FROM ` + p + `snapshots WHERE stream_id = ?`,
	}
	inl := p + "inline_projections"
	q.inlineCreate = `INSERT OR IGNORE INTO ` + inl + ` (name, position) VALUES (?, 0)`
	q.inlineReset = `UPDATE ` + inl + ` SET position = 0 WHERE name = ?`
	q.inlinePosition = `SELECT position FROM ` + inl + ` WHERE name = ?`
	q.inlineMove = `INSERT INTO ` + inl + ` (name, position) VALUES (?1, ?2)
		ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)`
	// What the global log shows in a range of positions: ReadAll's page
	// query with an upper bound. Arguments: from, before, now, limit.
	q.inlineRecords = q.selectAll + ` AND position < ?` + q.visible + ` ORDER BY position LIMIT ?`
	return q
}

// allQuery builds the global-log query for f. Only placeholders are added
// for the filter's values; the SQL shape depends on their count alone. The
// caller sets each page's first position and clock: args[0] and
// args[len(args)-2] (Unix nanoseconds, for the streams' MaxAge).
func (s *Store) allQuery(f eventsource.Filter) (string, []any) {
	var b strings.Builder
	b.WriteString(s.q.selectAll)
	args := []any{int64(0)}
	if len(f.Streams) > 0 || len(f.StreamPrefixes) > 0 {
		var ors []string
		if len(f.Streams) > 0 {
			ors = append(ors, "stream_id IN ("+placeholders(len(f.Streams))+")")
			for _, v := range f.Streams {
				args = append(args, v)
			}
		}
		for _, p := range f.StreamPrefixes {
			ors = append(ors, "substr(stream_id, 1, ?) = ?")
			args = append(args, len([]rune(p)), p)
		}
		b.WriteString(" AND (" + strings.Join(ors, " OR ") + ")")
	}
	if len(f.Types) > 0 {
		b.WriteString(" AND type IN (" + placeholders(len(f.Types)) + ")")
		for _, v := range f.Types {
			args = append(args, v)
		}
	}
	keys := make([]string, 0, len(f.Metadata))
	for k := range f.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(" AND EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND value = ? AND type = 'text')")
		args = append(args, k, f.Metadata[k])
	}
	b.WriteString(s.q.visible)
	args = append(args, int64(0))
	b.WriteString(" ORDER BY position LIMIT ?")
	args = append(args, s.batch)
	return b.String(), args
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
