-- Snapshots of aggregates, beside their streams (eventsource.SnapshotStore).
CREATE TABLE IF NOT EXISTS {{prefix}}snapshots (
    stream_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    position    INTEGER NOT NULL, -- of the last event the state includes, 0 when unknown
    schema      INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL, -- Unix nanoseconds, UTC
    PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;
