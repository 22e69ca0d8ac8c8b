-- Core schema: users, API tokens, login throttling, hosts, samples, thresholds, alerts.
-- Timestamps are UTC epoch milliseconds.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- Usernames are unique regardless of case, so "Admin" cannot impersonate "admin"; the
-- spelling given at registration is kept for display.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE api_tokens (
    token_hash   TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE INDEX api_tokens_expires ON api_tokens(expires_at);

CREATE TABLE login_failures (
    key              TEXT    PRIMARY KEY,
    failures         INTEGER NOT NULL,
    first_failure_at INTEGER NOT NULL,
    locked_until     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE hosts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER
);

CREATE TABLE samples (
    host_id        INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    ts             INTEGER NOT NULL,
    cpu            REAL    NOT NULL,
    memory         REAL    NOT NULL,
    memory_used    INTEGER NOT NULL,
    memory_total   INTEGER NOT NULL,
    swap           REAL    NOT NULL,
    load1          REAL    NOT NULL,
    load5          REAL    NOT NULL,
    load15         REAL    NOT NULL,
    disk           REAL    NOT NULL,
    disk_read_bps  REAL    NOT NULL,
    disk_write_bps REAL    NOT NULL,
    net_rx_bps     REAL    NOT NULL,
    net_tx_bps     REAL    NOT NULL,
    processes      INTEGER NOT NULL,
    uptime         INTEGER NOT NULL,
    PRIMARY KEY (host_id, ts)
) WITHOUT ROWID;

CREATE TABLE global_thresholds (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    cpu        REAL    NOT NULL,
    memory     REAL    NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO global_thresholds (id, cpu, memory, updated_at) VALUES (1, 80, 75, 0);

CREATE TABLE user_thresholds (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    cpu        REAL    NOT NULL,
    memory     REAL    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One row per breach episode; resolved_at IS NULL while the episode is open.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id     INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    owner_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
    metric      TEXT    NOT NULL,
    value       REAL    NOT NULL,
    threshold   REAL    NOT NULL,
    peak        REAL    NOT NULL,
    ts          INTEGER NOT NULL,
    resolved_at INTEGER
);
CREATE INDEX alerts_ts ON alerts(ts);
CREATE INDEX alerts_owner_ts ON alerts(owner_id, ts);
CREATE INDEX alerts_open ON alerts(resolved_at) WHERE resolved_at IS NULL;
