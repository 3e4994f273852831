-- A stream's version is the largest version among its events, an index probe
-- on the unique (stream_id, version) index, which is also the backstop when
-- two appends race at one version. Appends no longer update the streams row:
-- they insert it for a new stream and leave it alone otherwise. The row stays
-- for ListStreams and DeleteStream.
ALTER TABLE {streams} DROP COLUMN version;

-- append_version(stream, mode) returns the stream's version for an append,
-- read after taking locks that keep DeleteStream from running under the
-- append. VOLATILE, so in READ COMMITTED each of its queries takes a snapshot
-- of its own, after the locks: an append that waited for a delete sees the
-- stream gone.
--   In READ COMMITTED, every mode takes a shared advisory lock keyed by the
--   table and the stream, which DeleteStream takes exclusively: lock-table
--   memory only, nothing is written. It is held until the transaction ends.
--   In REPEATABLE READ or SERIALIZABLE, the queries still use the
--   transaction's snapshot, so the streams row is locked FOR KEY SHARE
--   instead, which DeleteStream's FOR UPDATE waits for and which fails with a
--   serialization error when the row was deleted since the snapshot.
--   mode 2 (Append, again after a refusal) also locks the streams row FOR NO
--   KEY UPDATE, so that appends retrying on one stream take turns.
-- A row lock misses the row when a delete removes it and an append creates
-- the stream again meanwhile, so without a row the version is read, and a
-- stream that has events again is locked anew. Without events, the append
-- inserts the row, which a concurrent creator's row makes it wait for.
CREATE FUNCTION {append_version}(stream text, mode int) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    locked boolean;
    v bigint;
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        PERFORM pg_advisory_xact_lock_shared('{events}'::regclass::oid::int, hashtext(stream));
        IF mode <> 2 THEN
            RETURN coalesce((SELECT max(version) FROM {events} WHERE stream_id = stream), 0);
        END IF;
    END IF;
    LOOP
        IF mode = 2 THEN
            PERFORM FROM {streams} WHERE stream_id = stream FOR NO KEY UPDATE;
        ELSE
            PERFORM FROM {streams} WHERE stream_id = stream FOR KEY SHARE;
        END IF;
        locked := FOUND;
        v := coalesce((SELECT max(version) FROM {events} WHERE stream_id = stream), 0);
        IF locked OR v = 0 THEN
            RETURN v;
        END IF;
    END LOOP;
END;
$$;
