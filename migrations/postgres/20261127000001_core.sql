-- Core schema: users, API tokens, login throttling, hosts, samples, thresholds, alerts.
-- Timestamps are UTC epoch milliseconds.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

-- Usernames are unique regardless of case, so "Admin" cannot impersonate "admin"; the
-- spelling given at registration is kept for display.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE api_tokens (
    token_hash   TEXT    PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE INDEX api_tokens_expires ON api_tokens(expires_at);

CREATE TABLE login_failures (
    key              TEXT    PRIMARY KEY,
    failures         BIGINT NOT NULL,
    first_failure_at BIGINT NOT NULL,
    locked_until     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE hosts (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT
);

CREATE TABLE samples (
    host_id        BIGINT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    ts             BIGINT NOT NULL,
    cpu            DOUBLE PRECISION    NOT NULL,
    memory         DOUBLE PRECISION    NOT NULL,
    memory_used    BIGINT NOT NULL,
    memory_total   BIGINT NOT NULL,
    swap           DOUBLE PRECISION    NOT NULL,
    load1          DOUBLE PRECISION    NOT NULL,
    load5          DOUBLE PRECISION    NOT NULL,
    load15         DOUBLE PRECISION    NOT NULL,
    disk           DOUBLE PRECISION    NOT NULL,
    disk_read_bps  DOUBLE PRECISION    NOT NULL,
    disk_write_bps DOUBLE PRECISION    NOT NULL,
    net_rx_bps     DOUBLE PRECISION    NOT NULL,
    net_tx_bps     DOUBLE PRECISION    NOT NULL,
    processes      BIGINT NOT NULL,
    uptime         BIGINT NOT NULL,
    PRIMARY KEY (host_id, ts)
);

CREATE TABLE global_thresholds (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    cpu        DOUBLE PRECISION    NOT NULL,
    memory     DOUBLE PRECISION    NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO global_thresholds (id, cpu, memory, updated_at) VALUES (1, 80, 75, 0);

CREATE TABLE user_thresholds (
    user_id    BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    cpu        DOUBLE PRECISION    NOT NULL,
    memory     DOUBLE PRECISION    NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per breach episode; resolved_at IS NULL while the episode is open.
CREATE TABLE alerts (
    id          BIGSERIAL PRIMARY KEY,
    host_id     BIGINT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    owner_id    BIGINT REFERENCES users(id) ON DELETE CASCADE,
    metric      TEXT    NOT NULL,
    value       DOUBLE PRECISION    NOT NULL,
    threshold   DOUBLE PRECISION    NOT NULL,
    peak        DOUBLE PRECISION    NOT NULL,
    ts          BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX alerts_ts ON alerts(ts);
CREATE INDEX alerts_owner_ts ON alerts(owner_id, ts);
CREATE INDEX alerts_open ON alerts(resolved_at) WHERE resolved_at IS NULL;
