-- Snapshots of aggregates, beside their streams (eventsource.SnapshotStore).
CREATE TABLE IF NOT EXISTS {snapshots} (
    stream_id   text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    position    bigint NOT NULL, -- of the last event the state includes, 0 when unknown
    schema      integer NOT NULL,
    data        bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);
