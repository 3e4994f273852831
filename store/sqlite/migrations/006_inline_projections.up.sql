-- Inline projections (WithInline): one row per projection, the position of
-- the last record of the global log it has seen. Written in the transaction
-- of every append made with the projection, and by the catch-up that brings
-- it up to the log's head; an append made without the option leaves it
-- behind, and the next one with it applies what lies between first.
CREATE TABLE {{prefix}}inline_projections (
    name     TEXT    NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
