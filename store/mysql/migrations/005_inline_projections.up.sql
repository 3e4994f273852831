-- Inline projections (WithInline): one row per projection, the position of
-- the last record of the global log it has seen. Appends with the
-- projection lock the row after the position counter and move it in their
-- transaction; an append made without the option leaves it behind, and the
-- next one with it applies what lies between first. Names are at most 200
-- bytes.
CREATE TABLE IF NOT EXISTS `{{prefix}}inline_projections` (
    name     VARBINARY(200) NOT NULL,
    position BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB;
