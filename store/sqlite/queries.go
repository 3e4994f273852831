package sqlite

import (
	"sort"
	"strings"

	"github.com/eventsource-go/eventsource"
)

// queries holds the store's SQL, built once from the table prefix.
type queries struct {
	version, insertEvent, byEventID, idsAt, stream, head, list, deleteEvents string
	selectAll                                                                string
}

const columns = `position, stream_id, version, event_id, type, codec, data, metadata, recorded_at`

func newQueries(p string) queries {
	return queries{
		// A stream's version is its newest event's, read from the
		// (stream_id, version) index: no second table to write per append.
		version:      `SELECT coalesce(max(version), 0) FROM ` + p + `events WHERE stream_id = ?`,
		insertEvent:  `INSERT INTO ` + p + `events (stream_id, version, event_id, type, codec, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		byEventID:    `SELECT stream_id, version, position FROM ` + p + `events WHERE event_id = ?`,
		idsAt:        `SELECT event_id, position FROM ` + p + `events WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version`,
		stream:       `SELECT ` + columns + ` FROM ` + p + `events WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version LIMIT ?`,
		selectAll:    `SELECT ` + columns + ` FROM ` + p + `events WHERE position >= ?`,
		head:         `SELECT coalesce(max(position), 0) FROM ` + p + `events`,
		list:         `SELECT stream_id, max(version) FROM ` + p + `events WHERE stream_id > ? AND substr(stream_id, 1, ?) = ? GROUP BY stream_id ORDER BY stream_id LIMIT ?`,
		deleteEvents: `DELETE FROM ` + p + `events WHERE stream_id = ?`,
	}
}

// allQuery builds the global-log query for f. Only placeholders are added
// for the filter's values; the SQL shape depends on their count alone.
func (s *Store) allQuery(f eventsource.Filter) (string, []any) {
	var b strings.Builder
	b.WriteString(s.q.selectAll)
	var args []any
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
	b.WriteString(" ORDER BY position LIMIT ?")
	args = append(args, s.batch)
	return b.String(), args
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
