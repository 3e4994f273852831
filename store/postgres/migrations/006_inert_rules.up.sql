-- A retention row that can no longer hide a stored record is inert: no age
-- rule, and a cut that retires nothing stored (1, or no higher than
-- "gone": the cut a scavenge of the stream removed everything below, when
-- no later append could land below it, the cut being at most its version
-- + 1, or a tombstone's). The global log checks records per row only while
-- some row is active, so a store whose deleted streams were scavenged, or
-- whose rules are only values, reads at full speed again.
ALTER TABLE {retention} ADD COLUMN gone bigint NOT NULL DEFAULT 0;
CREATE INDEX "{prefix}retention_active" ON {retention} (stream_id)
    WHERE max_age > 0 OR since IS NOT NULL OR (cut > 1 AND cut > gone);

-- The newest position a scavenge removed, so that Head, the newest
-- position of the log, never goes back when the log's tail is scavenged.
ALTER TABLE {retention} ADD COLUMN last_removed bigint NOT NULL DEFAULT 0;
CREATE INDEX "{prefix}retention_last_removed" ON {retention} (last_removed);
