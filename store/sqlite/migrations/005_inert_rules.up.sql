-- A rules row that can no longer hide anything in the global log is inert:
-- no age rule, and a cut that retires nothing stored (1, or no higher than
-- "gone": the cut at the stream's last scavenge, which removed everything
-- below it, when no later append could land below it). ReadAll checks per record only while some row is
-- active, so a store whose deleted streams were scavenged, or whose rules
-- are only values, reads the log at full speed again.
ALTER TABLE {{prefix}}stream_rules ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
CREATE INDEX {{prefix}}stream_rules_active ON {{prefix}}stream_rules (stream_id)
    WHERE max_age > 0 OR since > 0 OR (cut > 1 AND cut > gone);
