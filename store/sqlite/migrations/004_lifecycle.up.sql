-- Stream lifecycle (eventsource.StreamLifecycle): one row per stream that
-- has metadata or was deleted, none for the others, so that their appends
-- and reads find nothing here (a primary-key lookup that misses).
--
-- Rows are never deleted: retiring is one-way, and head keeps a stream's
-- version after a scavenge has removed its records (a stream's version is
-- the larger of head and max(version) of its events).
CREATE TABLE {{prefix}}stream_rules (
    stream_id    TEXT    NOT NULL PRIMARY KEY,
    meta         TEXT    NOT NULL, -- storekit.EncodeStreamMetadata
    meta_version INTEGER NOT NULL, -- 1 when first written
    max_count    INTEGER NOT NULL, -- meta's MaxCount, so that appends decode no JSON
    cut          INTEGER NOT NULL, -- storekit.Retention.Cut: the first visible version; 9223372036854775807 when tombstoned
    max_age      INTEGER NOT NULL, -- Retention.MaxAge in nanoseconds, 0 for none
    since        INTEGER NOT NULL, -- Retention.Since in Unix nanoseconds, UTC; 0 for none
    head         INTEGER NOT NULL  -- the stream's version when the row was last written or scavenged
) WITHOUT ROWID;
