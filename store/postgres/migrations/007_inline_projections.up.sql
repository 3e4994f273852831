-- Inline projections (WithInline; doc.go, "Inline projections").
--
-- position: every record of the global log below it has been applied by the
-- projection, or was retired before it saw it. It moves only to a
-- visibility bound (xmin << 20) or past records applied under the row's
-- lock, so no transaction that has not ended can still add a record below
-- it.
CREATE TABLE {inline} (
    name     text COLLATE "C" NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    CONSTRAINT "{prefix}inline_projections_pkey" PRIMARY KEY (name)
);

-- Ranges of positions at or above the projection's position that it has
-- applied already: each append made with the projection adds its own
-- records' range in its transaction (so the range commits with them), and
-- records applied ahead of the bound to keep a stream in order add one each.
-- Ranges never overlap; they are deleted once the position passes them.
CREATE TABLE {inline_applied} (
    name  text COLLATE "C" NOT NULL,
    first bigint NOT NULL,
    last  bigint NOT NULL,
    CONSTRAINT "{prefix}inline_applied_pkey" PRIMARY KEY (name, first)
);
