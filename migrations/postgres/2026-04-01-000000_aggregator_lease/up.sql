-- The lease that makes one of a miner's aggregator processes the active one
-- (docs/ARCHITECTURE.md, "Failover"). One row per lease name. `epoch` grows
-- by one at every change of holder and fences the outbox: a process writes
-- transactions only while the row still names it with its epoch and has not
-- expired. Times are the database's clock in unix milliseconds, so the
-- hosts' clocks do not matter.
CREATE TABLE aggregator_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL CHECK (epoch > 0),
    expires_at BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
