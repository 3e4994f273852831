-- Stream lifecycle (eventsource.StreamLifecycle and Scavenger): metadata per
-- stream, retention rules that retire records logically at once, soft and
-- hard deletes, and a scavenge that removes retired records. Upgrades in
-- place: the new columns have constant defaults (no table rewrite), and
-- existing streams have no rules.

-- A stream's metadata document (storekit.EncodeStreamMetadata; NULL when
-- never written) and its metadata version (0: never written). A stream may
-- have a row, with metadata, and no events; ListStreams leaves such a
-- stream out.
ALTER TABLE {streams}
    ADD COLUMN meta jsonb,
    ADD COLUMN meta_version bigint NOT NULL DEFAULT 0;

-- The rules appends and reads apply (storekit.Retention), one row per stream
-- that has any: a non-zero retention or a MaxCount. Rows are never deleted
-- (retiring is one-way). A store without rules has none, and then the
-- global log costs one look at this empty table per page.
--   cut: the first visible version; 9223372036854775807 for a tombstoned
--     stream. An append to a stream with max_count > 0 raises it in the
--     append's statement.
--   max_age: nanoseconds (0: none); since: records recorded before it are
--     retired (NULL: none).
--   head: the stream's version when Scavenge last removed records of it, so
--     that its version survives the removal of its newest records.
CREATE TABLE {retention} (
    stream_id text COLLATE "C" NOT NULL,
    cut       bigint NOT NULL DEFAULT 1,
    max_age   bigint NOT NULL DEFAULT 0,
    since     timestamptz,
    max_count bigint NOT NULL DEFAULT 0,
    head      bigint NOT NULL DEFAULT 0,
    CONSTRAINT "{prefix}retention_pkey" PRIMARY KEY (stream_id)
);

-- Raised by a write to, or a stream read of, a tombstoned stream. ZE001 is
-- the store's own SQLSTATE (class ZE is implementation-defined); the store
-- maps it to *eventsource.StreamDeletedError.
CREATE FUNCTION {tombstoned}(stream text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'eventsource: stream % is tombstoned', stream USING ERRCODE = 'ZE001';
END;
$$;

-- The version check moves into the function, with the rules it needs.
DROP FUNCTION {append_version}(text, int);

-- append_version(stream, mode, expected, n) returns the version after which
-- an append of n records to stream goes, or NULL when the stream is not at
-- the expected version (-1 Any, -2 StreamExists, else exact; NoStream on a
-- soft-deleted stream means its last version, as storekit.Retention.Expect
-- says). It raises ZE001 for a tombstoned stream. When the append may go
-- ahead it inserts a new stream's row and, for a stream with a MaxCount,
-- raises the cut to retire what falls out of the window, in the append's
-- statement.
--
-- Locks, taken before anything is read, so that lifecycle writes (which
-- write {streams} and {retention} in transactions of their own) never run
-- under an append:
--   In READ COMMITTED, a shared advisory lock keyed by the table and the
--   stream, which lifecycle writes take exclusively: lock-table memory only,
--   nothing is written. It is held until the transaction ends. The function
--   is VOLATILE, so each of its queries takes a snapshot of its own, after
--   the lock.
--   In REPEATABLE READ or SERIALIZABLE the queries use the transaction's
--   snapshot, so the streams row is locked FOR SHARE instead: a lifecycle
--   write locks it FOR UPDATE and updates it, so an append waits for one in
--   progress and fails with a serialization error after one that committed
--   since its snapshot. (FOR SHARE conflicts with every update of the row;
--   FOR KEY SHARE, which 002 took against a delete of the row, passes an
--   update that leaves the key alone unless the writer locked the row first.)
--   mode 2 (Append, again after a refusal) locks the streams row FOR NO KEY
--   UPDATE, so that appends retrying on one stream take turns.
-- A stream's version is the largest of its events' versions (an index probe
-- on (stream_id, version)) and its retention head; its rules are one probe
-- of {retention}, an empty table in a store without rules, in the same
-- query. A stream without rules takes the short way, as cheap as 002's.
CREATE FUNCTION {append_version}(stream text, mode int, expected bigint, n int) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_head bigint;
    v_cut bigint;
    v_count bigint;
    v_floor bigint;
    v_want bigint;
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        PERFORM pg_advisory_xact_lock_shared('{events}'::regclass::oid::int, hashtext(stream));
        IF mode = 2 THEN
            PERFORM FROM {streams} s WHERE s.stream_id = stream FOR NO KEY UPDATE;
        END IF;
    ELSIF mode = 2 THEN
        PERFORM FROM {streams} s WHERE s.stream_id = stream FOR NO KEY UPDATE;
    ELSE
        PERFORM FROM {streams} s WHERE s.stream_id = stream FOR SHARE;
    END IF;
    FOR attempt IN 1..2 LOOP
        SELECT (SELECT max(e.version) FROM {events} e WHERE e.stream_id = stream), r.cut, r.max_count, r.head
        INTO v_head, v_cut, v_count, v_floor
        FROM (SELECT) AS one LEFT JOIN {retention} r ON r.stream_id = stream;
        IF v_cut IS NULL THEN
            IF v_head > 0 THEN -- a stream with events and no rules
                IF expected = -1 OR expected = -2 OR expected = v_head THEN
                    RETURN v_head;
                END IF;
                RETURN NULL;
            END IF;
            v_head := 0;
            v_cut := 1;
            v_count := 0;
        ELSE
            v_head := greatest(v_head, v_floor);
        END IF;
        IF v_cut = 9223372036854775807 THEN
            PERFORM {tombstoned}(stream);
        END IF;
        v_want := expected;
        IF expected = 0 AND v_cut > 1 THEN
            v_want := least(v_head, v_cut - 1);
        END IF;
        IF NOT (v_want = -1 OR (v_want = -2 AND v_head > 0) OR v_want = v_head) THEN
            RETURN NULL;
        END IF;
        EXIT WHEN v_head > 0 OR attempt = 2;
        -- A new stream gets its row; a concurrent creator's row makes the
        -- insert wait for its commit. When the row was there (a stream with
        -- metadata and no events, or that creator's), read again.
        INSERT INTO {streams} (stream_id) VALUES (stream) ON CONFLICT DO NOTHING;
        EXIT WHEN FOUND;
    END LOOP;
    IF v_count > 0 THEN
        UPDATE {retention} r SET cut = greatest(r.cut, v_head + n - v_count + 1) WHERE r.stream_id = stream;
    END IF;
    RETURN v_head;
END;
$$;
