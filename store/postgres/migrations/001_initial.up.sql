-- The streams and events tables of one store. {streams}, {events}, {too_large}
-- and {prefix} are replaced with identifiers validated by the store's options,
-- never with user input.

-- One row per stream: its current version. Appends lock and bump this row, so
-- versions are assigned in commit order within a stream.
-- COLLATE "C": stream IDs compare as bytes (the contract's order for
-- ListStreams) and prefix ranges are plain index ranges.
CREATE TABLE {streams} (
    stream_id text COLLATE "C" NOT NULL,
    version   bigint NOT NULL,
    CONSTRAINT "{prefix}streams_pkey" PRIMARY KEY (stream_id)
);

-- The events. position = (top-level transaction id << 20) + index within
-- the transaction; see doc.go for why readers never miss one.
CREATE TABLE {events} (
    position    bigint NOT NULL,
    stream_id   text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    codec       text NOT NULL,
    data        bytea NOT NULL,
    metadata    jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT "{prefix}events_pkey" PRIMARY KEY (position),
    CONSTRAINT "{prefix}events_event_id_key" UNIQUE (event_id),
    CONSTRAINT "{prefix}events_stream_id_version_key" UNIQUE (stream_id, version)
);

-- Raised by an append that would overflow its transaction's position range
-- (more than 1,048,575 events in one transaction). SQLSTATE 54000 is
-- program_limit_exceeded; the store maps it to eventsource.ErrTooLarge.
CREATE FUNCTION {too_large}(xid bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'eventsource: transaction % holds more than 1048575 events', xid
        USING ERRCODE = '54000';
END;
$$;
