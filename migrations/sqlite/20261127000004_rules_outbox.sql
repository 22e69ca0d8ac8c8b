-- Alert rules, their evaluation state, notification channels and the delivery outbox.
-- Timestamps are UTC epoch milliseconds; durations are seconds.

CREATE TABLE rules (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL: a global rule (admin); otherwise the user who owns it.
    owner_id             INTEGER REFERENCES users(id) ON DELETE CASCADE,
    name                 TEXT    NOT NULL,
    metric               TEXT    NOT NULL,
    comparison           TEXT    NOT NULL,
    threshold            REAL    NOT NULL,
    for_secs             INTEGER NOT NULL DEFAULT 0,
    hysteresis           REAL    NOT NULL DEFAULT 0,
    keep_firing_for_secs INTEGER NOT NULL DEFAULT 0,
    severity             TEXT    NOT NULL DEFAULT 'warning',
    repeat_interval_secs INTEGER NOT NULL DEFAULT 14400,
    -- JSON array of host names; an empty array means every host.
    hosts                TEXT    NOT NULL DEFAULT '[]',
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    -- 'threshold' for the rules that mirror /thresholds and /admin/thresholds.
    managed              TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX rules_owner ON rules(owner_id);

-- The thresholds of the original service become managed rules.
INSERT INTO rules (owner_id, name, metric, comparison, threshold, managed, created_at, updated_at)
    SELECT NULL, 'CPU above global threshold', 'cpu', '>', cpu, 'threshold', updated_at, updated_at FROM global_thresholds WHERE id = 1;
INSERT INTO rules (owner_id, name, metric, comparison, threshold, managed, created_at, updated_at)
    SELECT NULL, 'Memory above global threshold', 'memory', '>', memory, 'threshold', updated_at, updated_at FROM global_thresholds WHERE id = 1;
INSERT INTO rules (owner_id, name, metric, comparison, threshold, managed, created_at, updated_at)
    SELECT user_id, 'CPU above my threshold', 'cpu', '>', cpu, 'threshold', updated_at, updated_at FROM user_thresholds;
INSERT INTO rules (owner_id, name, metric, comparison, threshold, managed, created_at, updated_at)
    SELECT user_id, 'Memory above my threshold', 'memory', '>', memory, 'threshold', updated_at, updated_at FROM user_thresholds;

ALTER TABLE alerts ADD COLUMN rule_id INTEGER REFERENCES rules(id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN rule_name TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN comparison TEXT NOT NULL DEFAULT '>';
ALTER TABLE alerts ADD COLUMN severity TEXT NOT NULL DEFAULT 'warning';
CREATE INDEX alerts_rule ON alerts(rule_id);

UPDATE alerts SET rule_id = (
    SELECT r.id FROM rules r
    WHERE r.managed = 'threshold' AND r.metric = alerts.metric
      AND ((r.owner_id IS NULL AND alerts.owner_id IS NULL) OR r.owner_id = alerts.owner_id)
);
UPDATE alerts SET rule_name = COALESCE((SELECT r.name FROM rules r WHERE r.id = alerts.rule_id), '');

-- Where each (rule, host) stands; no row means inactive.
CREATE TABLE rule_state (
    rule_id          INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    host_id          INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    -- 'pending' or 'firing'
    state            TEXT    NOT NULL,
    active_since     INTEGER NOT NULL,
    alert_id         INTEGER REFERENCES alerts(id) ON DELETE SET NULL,
    clear_since      INTEGER,
    last_notified_at INTEGER,
    peak             REAL    NOT NULL,
    PRIMARY KEY (rule_id, host_id)
);

-- Open alerts of the original thresholds carry on as firing rule state. They count as
-- notified now, so the upgrade does not send a burst of repeats for old episodes.
INSERT INTO rule_state (rule_id, host_id, state, active_since, alert_id, last_notified_at, peak)
    SELECT rule_id, host_id, 'firing', ts, id, CAST(strftime('%s', 'now') AS INTEGER) * 1000, peak FROM alerts
    WHERE resolved_at IS NULL AND rule_id IS NOT NULL
      AND id IN (SELECT MAX(id) FROM alerts WHERE resolved_at IS NULL GROUP BY rule_id, host_id);

CREATE TABLE channels (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL: a global channel (receives global rules' alerts); otherwise the owner's.
    owner_id        INTEGER REFERENCES users(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    -- 'webhook' or 'email'
    kind            TEXT    NOT NULL,
    -- webhook URL, or email recipients
    target          TEXT    NOT NULL,
    -- webhook signing secret (whsec_...)
    secret          TEXT,
    -- 'env' for the channels configured by ALERT_* variables, 'user' otherwise
    source          TEXT    NOT NULL DEFAULT 'user',
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX channels_owner ON channels(owner_id);
CREATE UNIQUE INDEX channels_env_kind ON channels(kind) WHERE source = 'env';

-- The outbox: written in the same transaction as the alert change that caused it.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- webhook-id: stable across retries, so receivers can deduplicate
    message_id      TEXT    NOT NULL UNIQUE,
    channel_id      INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    alert_id        INTEGER REFERENCES alerts(id) ON DELETE SET NULL,
    -- 'firing', 'repeat', 'resolved' or 'test'
    event           TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    -- 'pending', 'delivered' or 'dead'
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    locked_by       TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_channel ON deliveries(channel_id, id);
-- The claim keeps notifications about one alert to one channel in order; alerts cascade.
CREATE INDEX deliveries_alert ON deliveries(alert_id, channel_id, id);

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status      INTEGER,
    error       TEXT,
    -- 'delivered', 'retry', 'dead' or 'gone'
    outcome     TEXT    NOT NULL,
    worker      TEXT    NOT NULL
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, attempt);
