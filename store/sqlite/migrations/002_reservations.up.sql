-- Unique values reserved for one owner (eventsource.Reserver).
CREATE TABLE {{prefix}}reservations (
    scope       TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    reserved_at INTEGER NOT NULL, -- Unix nanoseconds, UTC
    PRIMARY KEY (scope, value)
) WITHOUT ROWID;
