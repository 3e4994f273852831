-- Stream lifecycle (eventsource.StreamLifecycle and Scavenger).
--
-- One row per stream that has metadata or was deleted; streams without rules
-- have none, so the LEFT JOIN readers make to this table finds nothing for
-- them. meta is the metadata document (storekit.EncodeStreamMetadata) and
-- meta_version its version; cut, max_age_ns and since are its
-- storekit.Retention: cut is the first visible version
-- (9223372036854775807 for a tombstoned stream), since retires what was
-- recorded before it (NULL: nothing). Rows are never deleted.
CREATE TABLE IF NOT EXISTS `{{prefix}}stream_rules` (
    stream_id    VARBINARY(1020) NOT NULL,
    meta         JSON NOT NULL,
    meta_version BIGINT NOT NULL,
    cut          BIGINT NOT NULL,
    max_age_ns   BIGINT NOT NULL,
    since        DATETIME(6) NULL,
    PRIMARY KEY (stream_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- streams.ruled: the stream has a stream_rules row. An append reads it in
-- the statement that moves the stream's version, and only a ruled stream's
-- append reads its rules. A stream with rules and no events has a streams
-- row at version 0. MySQL has no ADD COLUMN IF NOT EXISTS, so the ALTER
-- (instant on MySQL 8 and MariaDB 10.3+) runs only when the column is not
-- there yet, and the migration can run again after a crash half-way.
SET @es_lifecycle = IF(EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}streams' AND column_name = 'ruled'),
    'DO 0',
    'ALTER TABLE `{{prefix}}streams` ADD COLUMN ruled BOOL NOT NULL DEFAULT FALSE');
PREPARE es_lifecycle FROM @es_lifecycle;
EXECUTE es_lifecycle;
DEALLOCATE PREPARE es_lifecycle;
