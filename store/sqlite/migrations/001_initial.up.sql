-- AUTOINCREMENT: positions are never reused, even after the newest rows are
-- deleted. One writer at a time, so position order is commit order. A
-- stream's version is max(version) over the (stream_id, version) index, so an
-- append writes one table.
CREATE TABLE {{prefix}}events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    event_id    TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    codec       TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    metadata    TEXT,
    recorded_at INTEGER NOT NULL, -- Unix nanoseconds, UTC
    UNIQUE (stream_id, version)
);

CREATE INDEX {{prefix}}events_type ON {{prefix}}events (type, position);
