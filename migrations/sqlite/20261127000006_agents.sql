-- Agents: hosts that push their own samples. An agent host carries the SHA-256 hex digest
-- of its token (never the token), the version and period its agent last reported, and who
-- created it. Hosts the server samples itself keep these columns NULL.
ALTER TABLE hosts ADD COLUMN agent_token_hash TEXT;
ALTER TABLE hosts ADD COLUMN agent_version TEXT;
ALTER TABLE hosts ADD COLUMN interval_ms INTEGER;
ALTER TABLE hosts ADD COLUMN created_by TEXT;
-- NULLs are distinct, so any number of hosts may have no token.
CREATE UNIQUE INDEX hosts_agent_token ON hosts(agent_token_hash);

-- Batch ids already stored, per host: a retried batch is recognised and not stored twice.
-- Old ids are purged by the janitor (an agent retries for minutes, not days).
CREATE TABLE ingest_batches (
    host_id     INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    batch_id    TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    PRIMARY KEY (host_id, batch_id)
) WITHOUT ROWID;
CREATE INDEX ingest_batches_received ON ingest_batches(received_at);

-- Tokens of deleted hosts, so their agents learn that the host is gone (403) instead of
-- being told their token is wrong (401). Rotated-out tokens are not kept: they are 401.
CREATE TABLE retired_agent_tokens (
    token_hash TEXT    PRIMARY KEY,
    host_name  TEXT    NOT NULL,
    retired_at INTEGER NOT NULL
) WITHOUT ROWID;
