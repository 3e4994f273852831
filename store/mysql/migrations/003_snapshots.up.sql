-- Snapshots of aggregates, beside their streams (eventsource.SnapshotStore).
CREATE TABLE IF NOT EXISTS `{{prefix}}snapshots` (
    stream_id   VARBINARY(1020) NOT NULL,
    version     BIGINT NOT NULL,
    position    BIGINT UNSIGNED NOT NULL, -- of the last event the state includes, 0 when unknown
    `schema`    INT NOT NULL,
    data        LONGBLOB NOT NULL,
    recorded_at DATETIME(6) NOT NULL,
    PRIMARY KEY (stream_id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
