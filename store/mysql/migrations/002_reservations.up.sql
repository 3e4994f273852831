-- Unique values reserved for one owner (eventsource.Reserver), compared byte
-- for byte like stream IDs.
CREATE TABLE IF NOT EXISTS `{{prefix}}reservations` (
    scope       VARBINARY(1020) NOT NULL,
    value       VARBINARY(1020) NOT NULL,
    owner       VARBINARY(1020) NOT NULL,
    reserved_at DATETIME(6) NOT NULL,
    PRIMARY KEY (scope, value)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
