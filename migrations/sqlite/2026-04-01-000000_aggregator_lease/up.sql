-- The aggregator lease (see the postgres flavour). A SQLite database serves
-- one aggregator process, which holds a lock file instead; the table exists
-- so both backends keep one schema.
CREATE TABLE aggregator_lease (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL CHECK (epoch > 0),
    expires_at BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
