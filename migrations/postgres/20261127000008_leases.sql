-- Jobs that must run on one replica at a time (alert evaluation for agent hosts,
-- retention) hold a lease row: the holder renews it well before it expires, and once a
-- holder stops renewing (it died) any replica may take the row over.
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Up to which sample time the lease holder has evaluated each agent host's samples, so a
-- replica that takes over resumes exactly where the previous holder committed. A table of
-- its own, so moving cursors never waits on ingest's updates of the host rows.
CREATE TABLE agent_cursors (
    host_id         BIGINT PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
    evaluated_until BIGINT NOT NULL
);

-- The built-in "host down" rule: an agent host that has missed 10 of its reporting
-- intervals. It can be disabled or retuned but not deleted, and its metric is fixed.
INSERT INTO rules (owner_id, name, metric, comparison, threshold, severity, managed, created_at, updated_at)
    VALUES (NULL, 'Host down', 'missed_intervals', '>=', 10, 'critical', 'host_down', 0, 0);
