-- Streams, events and the global position counter.
--
-- IDs, type and codec names are VARBINARY so that they compare byte for byte:
-- the default collations fold case and trailing spaces, which would merge
-- distinct streams. {{prefix}} is replaced by the store's validated table prefix.

CREATE TABLE IF NOT EXISTS `{{prefix}}streams` (
    stream_id VARBINARY(1020) NOT NULL,
    version   BIGINT NOT NULL,
    PRIMARY KEY (stream_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS `{{prefix}}events` (
    position    BIGINT UNSIGNED NOT NULL,
    stream_id   VARBINARY(1020) NOT NULL,
    version     BIGINT NOT NULL,
    event_id    VARBINARY(512) NOT NULL,
    type        VARBINARY(1020) NOT NULL,
    codec       VARBINARY(1020) NOT NULL,
    data        LONGBLOB NOT NULL,
    metadata    JSON NULL,
    recorded_at DATETIME(6) NOT NULL,
    PRIMARY KEY (position),
    UNIQUE KEY stream_version (stream_id, version),
    UNIQUE KEY event_id (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row: the last position handed out. Appends lock it until they commit,
-- so positions are committed in order.
CREATE TABLE IF NOT EXISTS `{{prefix}}position` (
    id       TINYINT UNSIGNED NOT NULL,
    position BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;

INSERT IGNORE INTO `{{prefix}}position` (id, position) VALUES (1, 0);
