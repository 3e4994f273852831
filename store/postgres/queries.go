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
	return validInline(c.inline)
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
	events, streams, retention, snapshots, migrations string
	channel                                           string
	replacer                                          *strings.Replacer // for migration files

	// Append statements. appendOne (one record) and appendMany (an array
	// per column) serve Append, whose statement is the first of its
	// transaction; appendTx[notify] serves AppendTx, after whatever the
	// caller's transaction wrote, without and with an in-transaction
	// pg_notify.
	appendOne, appendMany    string
	appendTx                 [2]string
	lookup                   string
	readStream, readStreamTo string
	head, limits, bound      string
	notify                   string
	listStreams              string

	// Lifecycle (lifecycle.go).
	lockStream, lockRow, streamState, streamMetadata string
	writeMeta, writeRetention, deleteSnapshots       string
	ruledStreams, scavenge                           string

	// Inline projections (inline.go).
	inlineCreate, inlineLock, inlineReset, inlineState string
	inlineGap, inlineMove, inlineAdvance               string
	inlineMark, inlineMarkEach, inlineWalk             string
	inlineVersions                                     string
}

// bound is the exclusive upper bound of the positions a reader may see: every
// transaction whose ID is below the snapshot's xmin has ended, and every later
// one gets a larger ID, hence larger positions. An uncorrelated subquery, so
// it is computed once per statement and usable as an index bound.
const bound = `(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)`

// recordColumns are scanned by scanRecord, in this order.
const recordColumns = `position, stream_id, version, event_id, type, codec, data, metadata, recorded_at`

// tombstone is Retention.Cut of a tombstoned stream (math.MaxInt64).
const tombstone = `9223372036854775807`

// retired is true for a record of events e that retention row r retires at
// the statement's time (storekit.Retention.Visible, negated). NULL since
// compares as NULL, which a WHERE clause takes as false.
const retired = `(e.version < r.cut OR e.recorded_at < r.since OR
	(r.max_age > 0 AND e.recorded_at < now() - (r.max_age / 1000) * interval '1 microsecond'))`

// activeRule is the predicate of migration 006's partial index: a
// retention row that can still hide a stored record. The global log checks
// records against {retention} only while a row is active.
const activeRule = `(max_age > 0 OR since IS NOT NULL OR (cut > 1 AND cut > gone))`

// Lock modes of {append_version} (see migrations/005).
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
		retention:  ident(c, "retention"),
		snapshots:  ident(c, "snapshots"),
		migrations: ident(c, "schema_migrations"),
		channel:    channelName(c),
	}
	q.replacer = strings.NewReplacer(
		"{events}", q.events,
		"{streams}", q.streams,
		"{retention}", q.retention,
		"{snapshots}", q.snapshots,
		"{too_large}", ident(c, "too_large"),
		"{tombstoned}", ident(c, "tombstoned"),
		"{append_version}", ident(c, "append_version"),
		"{inline}", ident(c, "inline_projections"),
		"{inline_applied}", ident(c, "inline_applied"),
		"{prefix}", c.prefix,
	)
	q.buildAppends()
	q.buildReads()
	q.buildLifecycle()
	q.buildInline()
	return q
}

// appendSummary ends appendMany and appendTx: how many rows the append
// stored, and their positions and versions.
const appendSummary = `
SELECT count(*), coalesce(min(position), 0), coalesce(max(position), 0),
	coalesce(min(version), 0), coalesce(max(version), 0)`

// buildAppends builds the append statements and the lookup of event IDs
// that tells an exact retry.
//
// Every statement checks the expected version ($8) through
// {append_version} (migrations/005), which first takes a lock that keeps
// lifecycle writes from running under the append, then reads the stream's
// version and rules with a snapshot taken after the lock, and returns the
// version the append goes after, or NULL when the check fails (and then
// nothing is written). It also inserts a new stream's row, raises a
// MaxCount stream's cut and refuses a tombstoned stream, all in the
// append's statement. The unique index on (stream_id, version) is the
// backstop when two appends race at one version: the loser waits for the
// winner's commit, then gets a unique violation that the store reports as a
// conflict.
func (q *queries) buildAppends() {
	// Sent at commit, only by appends that stored something.
	notify := fmt.Sprintf(`,
	CASE WHEN count(*) > 0 THEN pg_notify('%s', '') END`, q.channel)
	q.appendOne = q.replacer.Replace(appendOneSQL)
	q.appendMany = q.replacer.Replace(appendManySQL)
	q.appendTx[0] = q.replacer.Replace(appendTxSQL(""))
	q.appendTx[1] = q.replacer.Replace(appendTxSQL(notify))
	// The stream's version and cut, and where each event ID is stored.
	q.lookup = q.replacer.Replace(`SELECT h.head, h.cut, e.stream_id, e.version, e.position
FROM (SELECT greatest(coalesce((SELECT max(version) FROM {events} WHERE stream_id = $1), 0), coalesce(max(r.head), 0)) AS head,
		coalesce(max(r.cut), 1) AS cut
	FROM {retention} r WHERE r.stream_id = $1) h,
	unnest($2::text[]) WITH ORDINALITY AS u(id, ord)
LEFT JOIN {events} e ON e.event_id = u.id
ORDER BY u.ord`)
}

// appendOneSQL is Append's statement for one record, a plain row of
// parameters. It is the first of its transaction, so its position is right
// after xid << 20.
const appendOneSQL = `INSERT INTO {events} (position, stream_id, version, event_id, type, codec, data, metadata)
SELECT (pg_current_xact_id()::text::bigint << 20) + 1, $1, v.base + 1, $2, $3, $4, $5, $6::text::jsonb
FROM (SELECT {append_version}($1, $7::int, $8::bigint, 1) AS base) v
WHERE v.base IS NOT NULL
RETURNING position, version`

// appendManySQL is Append's statement for several records, an array per
// column. It is the first of its transaction, so its positions start right
// after xid << 20.
const appendManySQL = `WITH ok AS (
	SELECT {append_version}($1, $7::int, $8::bigint, cardinality($2::text[])) AS base
), ins AS (
	INSERT INTO {events} (position, stream_id, version, event_id, type, codec, data, metadata)
	SELECT (pg_current_xact_id()::text::bigint << 20) + u.ord, $1, ok.base + u.ord,
		u.event_id, u.type, u.codec, u.data, u.metadata::jsonb
	FROM ok, unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[])
		WITH ORDINALITY AS u(event_id, type, codec, data, metadata, ord)
	WHERE ok.base IS NOT NULL
	RETURNING position, version
)` + appendSummary + `
FROM ins`

// appendTxSQL is AppendTx's statement, after whatever the caller's
// transaction wrote: its positions follow the transaction's largest so
// far. notify is appended to the summary's columns (empty for none).
func appendTxSQL(notify string) string {
	return `WITH ok AS (
	SELECT {append_version}($1, $7::int, $8::bigint, cardinality($2::text[])) AS base
), x AS (
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
	WHERE ok.base IS NOT NULL
	RETURNING position, version
)` + appendSummary + notify + `
FROM ins`
}

// streamRules is the one row of stream $1's rules that its reads apply:
// the first visible version (1 when it has none) and the recorded time
// before which records are retired (storekit.Retention.Oldest; -infinity
// when none), raising ZE001 for a tombstoned stream. An aggregate, so there
// is a row when the stream has no rules.
const streamRules = `SELECT
	coalesce(max(CASE WHEN r.cut = ` + tombstone + ` THEN {tombstoned}($1) ELSE r.cut END), 1) AS cut,
	coalesce(max(greatest(r.since, CASE WHEN r.max_age > 0 THEN now() - (r.max_age / 1000) * interval '1 microsecond' END)),
		'-infinity'::timestamptz) AS oldest
FROM {retention} r WHERE r.stream_id = $1`

// buildReads builds the statements of reads, the head, the visibility
// bound, notification and stream listing.
//
// A stream read starts at max(from, cut) and skips records recorded before
// the oldest the rules keep, inside the LIMIT (so a short page is the end).
// The rules are InitPlans, computed once per page. The cut is a second
// lower bound of the index range rather than greatest(from, cut): the
// planner estimates the range by from (with statistics) and the unknown
// cut at a third at most, as it does the age condition, so a long stream
// is still an index scan that stops after a page, not a sort of the rest.
func (q *queries) buildReads() {
	read := func(to string) string {
		return q.replacer.Replace(`WITH r AS MATERIALIZED (` + streamRules + `)
SELECT ` + recordColumns + ` FROM {events}
WHERE stream_id = $1 AND version >= $2 AND version >= (SELECT cut FROM r)` + to + `
	AND recorded_at >= (SELECT oldest FROM r)
ORDER BY version LIMIT $3`)
	}
	q.readStream = read("")
	q.readStreamTo = read(" AND version <= $4")
	q.notify = fmt.Sprintf(`SELECT pg_notify('%s', '')`, q.channel)
	q.bound = `SELECT ` + bound
	q.limits = q.replacer.Replace(`SELECT ` + bound + `, coalesce((SELECT max(position) FROM {events}), 0)`)
	// Head never goes back: a scavenge of the log's tail leaves its newest
	// position in {retention} (migration 006). (limits, which tells readers
	// whether records lie ahead, counts only stored ones.)
	q.head = q.replacer.Replace(`SELECT greatest(coalesce(max(position), 0), (SELECT coalesce(max(last_removed), 0) FROM {retention}))
FROM {events} WHERE position < ` + bound)
	// Streams that are not storekit.Retention.Absent: a version above 0
	// (the largest of its events' and its retention head) at or above the
	// cut. The lateral subquery (OFFSET 0: computed once per stream, and
	// never flattened into a join the planner could hash and sort) is two
	// index probes per stream, and the plan stays a scan of the streams key
	// in order that stops after a page.
	q.listStreams = q.replacer.Replace(`SELECT s.stream_id, h.head
FROM {streams} s
CROSS JOIN LATERAL (
	SELECT greatest((SELECT max(e.version) FROM {events} e WHERE e.stream_id = s.stream_id), r.head, 0) AS head,
		coalesce(r.cut, 1) AS cut
	FROM (SELECT) AS one LEFT JOIN {retention} r ON r.stream_id = s.stream_id
	OFFSET 0
) h
WHERE s.stream_id >= $2 AND s.stream_id > $1 AND starts_with(s.stream_id, $2) AND ($3::text IS NULL OR s.stream_id < $3)
	AND h.head > 0 AND h.cut <= h.head
ORDER BY s.stream_id LIMIT $4`)
}

// buildLifecycle builds the statements of lifecycle writes and reads and
// of Scavenge (lifecycle.go).
func (q *queries) buildLifecycle() {
	// Taken first by every lifecycle write: exclusive, where appends in
	// READ COMMITTED take it shared (migrations/005).
	q.lockStream = q.replacer.Replace(`SELECT pg_advisory_xact_lock('{events}'::regclass::oid::int, hashtext($1))`)
	// Appends in REPEATABLE READ or SERIALIZABLE lock the row FOR SHARE.
	q.lockRow = q.replacer.Replace(`SELECT meta, meta_version FROM {streams} WHERE stream_id = $1 FOR UPDATE`)
	q.streamState = q.replacer.Replace(`SELECT count(*) > 0, coalesce(max(r.cut), 1), coalesce(max(r.max_age), 0), max(r.since),
	greatest(coalesce((SELECT max(version) FROM {events} WHERE stream_id = $1), 0), coalesce(max(r.head), 0)),
	clock_timestamp()
FROM {retention} r WHERE r.stream_id = $1`)
	q.streamMetadata = q.replacer.Replace(`SELECT s.meta, s.meta_version, coalesce((SELECT r.cut FROM {retention} r WHERE r.stream_id = $1), 1)
FROM {streams} s WHERE s.stream_id = $1`)
	q.writeMeta = q.replacer.Replace(`INSERT INTO {streams} (stream_id, meta, meta_version) VALUES ($1, $2::text::jsonb, $3)
ON CONFLICT (stream_id) DO UPDATE SET meta = excluded.meta, meta_version = excluded.meta_version`)
	q.writeRetention = q.replacer.Replace(`INSERT INTO {retention} AS r (stream_id, cut, max_age, since, max_count) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stream_id) DO UPDATE SET cut = greatest(r.cut, excluded.cut), max_age = excluded.max_age,
	since = excluded.since, max_count = excluded.max_count`)
	q.deleteSnapshots = q.replacer.Replace(`DELETE FROM {snapshots} WHERE stream_id = $1`)
	// Streams with a non-zero retention, in ID order after $1.
	q.ruledStreams = q.replacer.Replace(`SELECT stream_id FROM {retention}
WHERE stream_id > $1 AND (cut > 1 OR max_age > 0 OR since IS NOT NULL)
ORDER BY stream_id LIMIT $2`)
	// One stream's retired records, and its head kept in {retention} when
	// any went (the subquery sees the records as they were before the
	// delete: one snapshot for the whole statement).
	//
	// The row also records the cut it scavenged ("gone", migration 006),
	// read from the statement's snapshot (c) like the delete's, not from
	// the row the update finds (an append's MaxCount may have raised it
	// since): at most the stream's version + 1, or a tombstone's, no later
	// append lands below it, so the row turns inert.
	q.scavenge = q.replacer.Replace(`WITH c AS (
	SELECT cut, greatest(head, (SELECT max(version) FROM {events} WHERE stream_id = $1)) AS v
	FROM {retention} WHERE stream_id = $1
), d AS (
	DELETE FROM {events} e USING {retention} r
	WHERE r.stream_id = $1 AND e.stream_id = $1 AND ` + retired + `
	RETURNING e.version, e.position
), h AS (
	UPDATE {retention} r SET
		head = CASE WHEN EXISTS (SELECT FROM d) THEN greatest(r.head, c.v) ELSE r.head END,
		last_removed = greatest(r.last_removed, coalesce((SELECT max(position) FROM d), 0)),
		gone = CASE WHEN c.cut <= c.v + 1 OR c.cut = ` + tombstone + ` THEN greatest(r.gone, c.cut) ELSE r.gone END
	FROM c WHERE r.stream_id = $1
)
SELECT count(*) FROM d`)
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
	b.WriteString(`SELECT ` + recordColumns + ` FROM (SELECT ` + recordColumns + ` FROM ` + q.events + ` e
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
	// Last, so that only records the filter keeps pay for it: records
	// their stream's rules retire. Without an active rule the first arm,
	// an InitPlan over the partial index of active rows, is true for every
	// row; with rules, each
	// row is one probe of {retention}'s key (a SubPlan, so the plan stays
	// an index scan in position order).
	b.WriteString(` AND ((SELECT NOT EXISTS (SELECT FROM ` + q.retention + ` WHERE ` + activeRule + `)) OR NOT EXISTS (SELECT FROM ` + q.retention + ` r
	WHERE r.stream_id = e.stream_id AND ` + retired + `))`)
	b.WriteString(` ORDER BY position LIMIT $2) page WHERE position < ` + bound + ` ORDER BY position`)
	return b.String(), args
}
