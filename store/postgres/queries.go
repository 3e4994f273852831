package postgres

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/eventsource-go/eventsource"
)

var (
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_]{0,30}$`)
	schemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

func (c config) validate() error {
	switch {
	case !prefixRE.MatchString(c.prefix):
		return fmt.Errorf("%w: postgres: table prefix %q: want at most 30 ASCII letters, digits and underscores", eventsource.ErrInvalidConfig, c.prefix)
	case c.schema != "" && !schemaRE.MatchString(c.schema):
		return fmt.Errorf("%w: postgres: schema %q: want 1..63 ASCII letters, digits and underscores, not starting with a digit", eventsource.ErrInvalidConfig, c.schema)
	case len(channelName(c)) > 63:
		return fmt.Errorf("%w: postgres: schema %q and prefix %q make a notification channel name longer than 63 bytes", eventsource.ErrInvalidConfig, c.schema, c.prefix)
	case c.batch < 1:
		return fmt.Errorf("%w: postgres: batch size %d, want at least 1", eventsource.ErrInvalidConfig, c.batch)
	case c.readWait < 0:
		return fmt.Errorf("%w: postgres: read wait %v", eventsource.ErrInvalidConfig, c.readWait)
	case c.maxData < 0:
		return fmt.Errorf("%w: postgres: max data size %d", eventsource.ErrInvalidConfig, c.maxData)
	}
	return nil
}

// channelName is the LISTEN/NOTIFY channel of a store. Channels are
// database-wide, so it names the schema too.
func channelName(c config) string {
	if c.schema == "" {
		return c.prefix + "events"
	}
	return c.schema + "." + c.prefix + "events"
}

// ident returns the quoted, schema-qualified name of one of the store's
// objects. Its parts come from validated options only.
func ident(c config, name string) string {
	if c.schema == "" {
		return pgx.Identifier{c.prefix + name}.Sanitize()
	}
	return pgx.Identifier{c.schema, c.prefix + name}.Sanitize()
}

// queries holds the store's SQL, built once from validated identifiers.
type queries struct {
	events, streams, migrations string
	channel                     string
	replacer                    *strings.Replacer // for migration files

	// Append statements per kind of expected version. appendOne (one
	// record) and appendMany (an array per column) serve Append, whose
	// statement is the first of its transaction; appendTx[kind][notify]
	// serves AppendTx, after whatever the caller's transaction wrote,
	// without and with an in-transaction pg_notify.
	appendOne, appendMany                                 [4]string
	appendTx                                              [4][2]string
	lookup                                                string
	readStream, readStreamTo                              string
	head, limits, bound                                   string
	notify                                                string
	listStreams                                           string
	lockDelete                                            string
	lockStream, streamVersion, deleteEvents, deleteStream string
}

// bound is the exclusive upper bound of the positions a reader may see: every
// transaction whose ID is below the snapshot's xmin has ended, and every later
// one gets a larger ID, hence larger positions. An uncorrelated subquery, so
// it is computed once per statement and usable as an index bound.
const bound = `(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)`

// Kinds of expected version, indexes of the append statements.
const (
	kindNoStream = iota
	kindExact
	kindAny
	kindExists
)

// recordColumns are scanned by scanRecord, in this order.
const recordColumns = `position, stream_id, version, event_id, type, codec, data, metadata, recorded_at`

// versionCheck returns the CTEs that check the expected version of kind
// for stream $1 (and, for kindExact, expected version $8). The last one,
// ok, yields the stream's version before the append, or no row when the
// check fails (and then nothing is written).
//
// The version comes from {append_version} (migrations/002), which first
// takes a lock that keeps DeleteStream from running under the append, then
// reads the largest stored version with a snapshot taken after the lock (an
// index probe on (stream_id, version)). The unique index on (stream_id,
// version) is the backstop when two appends race at one version: the loser
// waits for the winner's commit, then gets a unique violation that the store
// reports as a conflict. A new stream gets its streams row (for ListStreams
// and DeleteStream) by INSERT … ON CONFLICT DO NOTHING; an existing stream's
// row is not written.
func versionCheck(kind int) string {
	current := `c AS (
	SELECT {append_version}($1, $7::int) AS version
)`
	create := `, s AS (
	INSERT INTO {streams} (stream_id) SELECT $1 FROM c WHERE c.version = 0
	ON CONFLICT DO NOTHING RETURNING 0::bigint AS base
)`
	switch kind {
	case kindNoStream:
		return current + create + `, ok AS (SELECT base FROM s)`
	case kindExact:
		return current + `, ok AS (SELECT c.version AS base FROM c WHERE c.version = $8)`
	case kindAny:
		return current + create + `, ok AS (
	SELECT c.version AS base FROM c WHERE c.version > 0 UNION ALL SELECT base FROM s
)`
	default: // kindExists
		return current + `, ok AS (SELECT c.version AS base FROM c WHERE c.version > 0)`
	}
}

// Lock modes of {append_version} (see migrations/002).
const (
	lockAppend = 0 // Append
	lockTx     = 1 // AppendTx
	lockRetry  = 2 // Append, again after a refusal: also the streams row FOR NO KEY UPDATE, so retries take turns
)

// buildQueries builds the store's SQL for the validated config c.
func buildQueries(c config) queries {
	q := queries{
		events:     ident(c, "events"),
		streams:    ident(c, "streams"),
		migrations: ident(c, "schema_migrations"),
		channel:    channelName(c),
	}
	q.replacer = strings.NewReplacer(
		"{events}", q.events,
		"{streams}", q.streams,
		"{too_large}", ident(c, "too_large"),
		"{append_version}", ident(c, "append_version"),
		"{prefix}", c.prefix,
	)
	q.buildAppends()
	q.buildReads()
	q.buildDeletes()
	return q
}

// appendSummary ends appendMany and appendTx: how many rows the append
// stored, and their positions and versions.
const appendSummary = `
SELECT count(*), coalesce(min(position), 0), coalesce(max(position), 0),
	coalesce(min(version), 0), coalesce(max(version), 0)`

// buildAppends builds the append statements of every kind of expected
// version, and the lookup of event IDs that tells an exact retry.
func (q *queries) buildAppends() {
	// Sent at commit, only by appends that stored something.
	notify := fmt.Sprintf(`,
	CASE WHEN count(*) > 0 THEN pg_notify('%s', '') END`, q.channel)
	for kind := kindNoStream; kind <= kindExists; kind++ {
		q.appendOne[kind] = q.replacer.Replace(appendOneSQL(kind))
		q.appendMany[kind] = q.replacer.Replace(appendManySQL(kind))
		q.appendTx[kind][0] = q.replacer.Replace(appendTxSQL(kind, ""))
		q.appendTx[kind][1] = q.replacer.Replace(appendTxSQL(kind, notify))
	}
	q.lookup = q.replacer.Replace(`SELECT coalesce((SELECT max(version) FROM {events} WHERE stream_id = $1), 0),
	e.stream_id, e.version, e.position
FROM unnest($2::text[]) WITH ORDINALITY AS u(id, ord)
LEFT JOIN {events} e ON e.event_id = u.id
ORDER BY u.ord`)
}

// appendOneSQL is Append's statement for one record. It is the first of
// its transaction, so its position is right after xid << 20.
func appendOneSQL(kind int) string {
	if kind == kindExact {
		// The common case, without CTEs (a plan of two nodes): one row,
		// so the condition runs once.
		return `INSERT INTO {events} (position, stream_id, version, event_id, type, codec, data, metadata)
SELECT (pg_current_xact_id()::text::bigint << 20) + 1, $1, $8 + 1, $2, $3, $4, $5, $6::text::jsonb
WHERE {append_version}($1, $7::int) = $8
RETURNING position, version`
	}
	return `WITH ` + versionCheck(kind) + `
INSERT INTO {events} (position, stream_id, version, event_id, type, codec, data, metadata)
SELECT (pg_current_xact_id()::text::bigint << 20) + 1, $1, ok.base + 1, $2, $3, $4, $5, $6::text::jsonb
FROM ok
RETURNING position, version`
}

// appendManySQL is Append's statement for several records, an array per
// column. It is the first of its transaction, so its positions start right
// after xid << 20.
func appendManySQL(kind int) string {
	return `WITH ` + versionCheck(kind) + `, ins AS (
	INSERT INTO {events} (position, stream_id, version, event_id, type, codec, data, metadata)
	SELECT (pg_current_xact_id()::text::bigint << 20) + u.ord, $1, ok.base + u.ord,
		u.event_id, u.type, u.codec, u.data, u.metadata::jsonb
	FROM ok, unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[])
		WITH ORDINALITY AS u(event_id, type, codec, data, metadata, ord)
	RETURNING position, version
)` + appendSummary + `
FROM ins`
}

// appendTxSQL is AppendTx's statement, after whatever the caller's
// transaction wrote: its positions follow the transaction's largest so
// far. notify is appended to the summary's columns (empty for none).
func appendTxSQL(kind int, notify string) string {
	return `WITH ` + versionCheck(kind) + `, x AS (
	SELECT pg_current_xact_id()::text::bigint AS xid
), b AS (
	-- Only this transaction writes positions in [xid<<20, (xid+1)<<20).
	SELECT x.xid, coalesce((SELECT max(position) FROM {events}
		WHERE position >= (x.xid << 20) AND position < ((x.xid + 1) << 20)), x.xid << 20) AS base
	FROM x
), ins AS (
	INSERT INTO {events} (position, stream_id, version, event_id, type, codec, data, metadata)
	SELECT CASE WHEN b.base + u.ord < ((b.xid + 1) << 20) THEN b.base + u.ord ELSE {too_large}(b.xid) END,
		$1, ok.base + u.ord, u.event_id, u.type, u.codec, u.data, u.metadata::jsonb
	FROM ok, b, unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[])
		WITH ORDINALITY AS u(event_id, type, codec, data, metadata, ord)
	RETURNING position, version
)` + appendSummary + notify + `
FROM ins`
}

// buildReads builds the statements of reads, the head, the visibility
// bound, notification and stream listing.
func (q *queries) buildReads() {
	q.readStream = q.replacer.Replace(`SELECT ` + recordColumns + ` FROM {events}
WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`)
	q.readStreamTo = q.replacer.Replace(`SELECT ` + recordColumns + ` FROM {events}
WHERE stream_id = $1 AND version >= $2 AND version <= $4 ORDER BY version LIMIT $3`)
	q.notify = fmt.Sprintf(`SELECT pg_notify('%s', '')`, q.channel)
	q.bound = `SELECT ` + bound
	q.limits = q.replacer.Replace(`SELECT ` + bound + `, coalesce((SELECT max(position) FROM {events}), 0)`)
	q.head = q.replacer.Replace(`SELECT coalesce(max(position), 0) FROM {events} WHERE position < ` + bound)
	q.listStreams = q.replacer.Replace(`SELECT s.stream_id,
	coalesce((SELECT max(version) FROM {events} e WHERE e.stream_id = s.stream_id), 0)
FROM {streams} s
WHERE s.stream_id >= $2 AND s.stream_id > $1 AND starts_with(s.stream_id, $2) AND ($3::text IS NULL OR s.stream_id < $3)
ORDER BY s.stream_id LIMIT $4`)
}

// buildDeletes builds DeleteStream's statements.
func (q *queries) buildDeletes() {
	q.lockDelete = q.replacer.Replace(`SELECT pg_advisory_xact_lock('{events}'::regclass::oid::int, hashtext($1))`)
	q.lockStream = q.replacer.Replace(`SELECT FROM {streams} WHERE stream_id = $1 FOR UPDATE`)
	q.streamVersion = q.replacer.Replace(`SELECT coalesce(max(version), 0) FROM {events} WHERE stream_id = $1`)
	q.deleteEvents = q.replacer.Replace(`DELETE FROM {events} WHERE stream_id = $1`)
	q.deleteStream = q.replacer.Replace(`DELETE FROM {streams} WHERE stream_id = $1`)
}

// readAllSQL builds the global-log query for a filter: fixed fragments for
// the filter fields that are set, every value a parameter. $1 is the first
// position, $2 the batch size.
//
// The page is the first $2 matching rows from $1 on, of which those below
// the visibility bound are kept: the same rows as "position >= $1 AND
// position < bound ... LIMIT $2" (every row below the bound comes before
// every row above it), but the planner cannot mistake it for a small range.
// Without statistics (a table just loaded, autovacuum off) it estimated
// that range at a few hundred rows and chose a bitmap scan and a sort of
// everything after $1: each page cost a scan of the rest of the log, and a
// catch-up grew quadratic. This form is an index scan that stops after $2
// rows, with or without statistics, and however many rows wait above the
// bound.
func (q *queries) readAllSQL(f *filter) (string, []any) {
	var b strings.Builder
	args := []any{int64(0), 0}
	b.WriteString(`SELECT ` + recordColumns + ` FROM (SELECT ` + recordColumns + ` FROM ` + q.events + `
WHERE position >= $1`)
	param := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	switch {
	case len(f.streams) > 0 && len(f.prefixes) > 0:
		b.WriteString(` AND (stream_id = ANY(` + param(f.streams) + `::text[]) OR EXISTS (SELECT 1 FROM unnest(` +
			param(f.prefixes) + `::text[]) AS p(p) WHERE starts_with(stream_id, p.p)))`)
	case len(f.streams) > 0:
		b.WriteString(` AND stream_id = ANY(` + param(f.streams) + `::text[])`)
	case len(f.prefixes) > 0:
		b.WriteString(` AND EXISTS (SELECT 1 FROM unnest(` + param(f.prefixes) + `::text[]) AS p(p) WHERE starts_with(stream_id, p.p))`)
	}
	if len(f.types) > 0 {
		b.WriteString(` AND type = ANY(` + param(f.types) + `::text[])`)
	}
	if f.metadata != "" {
		b.WriteString(` AND metadata @> ` + param(f.metadata) + `::text::jsonb`)
	}
	b.WriteString(` ORDER BY position LIMIT $2) page WHERE position < ` + bound + ` ORDER BY position`)
	return b.String(), args
}
