-- Unique values reserved for one owner (eventsource.Reserver). COLLATE "C":
-- compared byte for byte, like stream IDs.
CREATE TABLE IF NOT EXISTS {reservations} (
    scope       text COLLATE "C" NOT NULL,
    value       text COLLATE "C" NOT NULL,
    owner       text NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, value)
);
