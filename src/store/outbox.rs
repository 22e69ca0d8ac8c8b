//! SQL for rules, rule state, channels and the delivery outbox, shared by both engines
//! like `shared.rs`: inherent methods the `Store` implementation delegates to. Each engine
//! supplies `CLAIM_SQL` (PostgreSQL adds `FOR UPDATE SKIP LOCKED`).

macro_rules! rule_columns {
    () => {
        "id, owner_id, name, metric, comparison, threshold, for_secs, hysteresis, keep_firing_for_secs, severity, repeat_interval_secs, hosts, enabled, managed, created_at, updated_at"
    };
}

macro_rules! channel_columns {
    () => {
        "id, owner_id, name, kind, target, secret, source, enabled, disabled_reason, created_at, updated_at"
    };
}

macro_rules! delivery_select {
    () => {
        "SELECT d.id, d.message_id, d.channel_id, c.name AS channel_name, c.kind AS channel_kind, c.owner_id, d.alert_id, d.event, d.payload, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.finished_at FROM deliveries d JOIN channels c ON c.id = d.channel_id"
    };
}

// Scope as two parameters so statements stay static: kind 0 = all, 1 = owner, 2 = global.
macro_rules! scope_filter {
    ($col:literal, $k:literal, $o:literal) => {
        concat!(
            "($",
            $k,
            " = 0 OR ($",
            $k,
            " = 1 AND ",
            $col,
            " = $",
            $o,
            ") OR ($",
            $k,
            " = 2 AND ",
            $col,
            " IS NULL))"
        )
    };
}

pub(super) fn scope_params(scope: super::Scope) -> (i64, i64) {
    match scope {
        super::Scope::All => (0, 0),
        super::Scope::Owner(id) => (1, id),
        super::Scope::Global => (2, 0),
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RuleRow {
    id: i64,
    owner_id: Option<i64>,
    name: String,
    metric: String,
    comparison: String,
    threshold: f64,
    for_secs: i64,
    hysteresis: f64,
    keep_firing_for_secs: i64,
    severity: String,
    repeat_interval_secs: i64,
    hosts: String,
    enabled: bool,
    managed: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<RuleRow> for super::Rule {
    fn from(r: RuleRow) -> Self {
        Self {
            id: r.id,
            owner_id: r.owner_id,
            name: r.name,
            metric: r.metric,
            comparison: r.comparison,
            threshold: r.threshold,
            for_secs: r.for_secs,
            hysteresis: r.hysteresis,
            keep_firing_for_secs: r.keep_firing_for_secs,
            severity: r.severity,
            repeat_interval_secs: r.repeat_interval_secs,
            // Written by us as a JSON array; anything else reads as "all hosts".
            hosts: serde_json::from_str(&r.hosts).unwrap_or_default(),
            enabled: r.enabled,
            managed: r.managed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub(super) fn hosts_json(hosts: &[String]) -> String {
    serde_json::to_string(hosts).unwrap_or_else(|_| "[]".to_owned())
}

/// Ids as a JSON array, the form the engines' statements unpack (`json_each` in SQLite,
/// `json_array_elements_text` in PostgreSQL): one statement whatever the number of ids.
pub(super) fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

/// Fills a payload's `alert_id` when the engine did not know it yet.
pub(super) fn payload_text(payload: &serde_json::Value, alert_id: Option<i64>) -> String {
    let mut p = payload.clone();
    if let (Some(obj), Some(id)) = (p.as_object_mut(), alert_id) {
        if obj.get("alert_id").is_none_or(|v| v.is_null()) {
            obj.insert("alert_id".into(), id.into());
        }
    }
    p.to_string()
}

macro_rules! impl_outbox {
    ($ty:ty) => {
        impl $ty {
            async fn list_rules_impl(&self, scope: Scope) -> StoreResult<Vec<Rule>> {
                let (k, o) = $crate::store::outbox::scope_params(scope);
                let rows = sqlx::query_as::<_, $crate::store::outbox::RuleRow>(concat!(
                    "SELECT ", $crate::store::outbox::rule_columns!(), " FROM rules WHERE ",
                    $crate::store::outbox::scope_filter!("owner_id", "1", "2"),
                    " ORDER BY owner_id IS NOT NULL, owner_id, id"
                ))
                .bind(k)
                .bind(o)
                .fetch_all(self.r())
                .await?;
                Ok(rows.into_iter().map(Rule::from).collect())
            }

            async fn active_rules_impl(&self) -> StoreResult<Vec<Rule>> {
                let rows = sqlx::query_as::<_, $crate::store::outbox::RuleRow>(concat!(
                    "SELECT ", $crate::store::outbox::rule_columns!(), " FROM rules r WHERE r.enabled = TRUE \
                     AND (r.owner_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = r.owner_id AND u.disabled = FALSE)) ORDER BY r.id"
                ))
                .fetch_all(self.r())
                .await?;
                Ok(rows.into_iter().map(Rule::from).collect())
            }

            async fn rule_impl(&self, id: i64) -> StoreResult<Option<Rule>> {
                let row = sqlx::query_as::<_, $crate::store::outbox::RuleRow>(concat!(
                    "SELECT ", $crate::store::outbox::rule_columns!(), " FROM rules WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(Rule::from))
            }

            async fn create_rule_impl(&self, owner_id: Option<i64>, input: &RuleInput, now: i64) -> StoreResult<Rule> {
                let row = sqlx::query_as::<_, $crate::store::outbox::RuleRow>(concat!(
                    "INSERT INTO rules (owner_id, name, metric, comparison, threshold, for_secs, hysteresis, keep_firing_for_secs, \
                     severity, repeat_interval_secs, hosts, enabled, managed, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $13) RETURNING ",
                    $crate::store::outbox::rule_columns!()
                ))
                .bind(owner_id)
                .bind(&input.name)
                .bind(&input.metric)
                .bind(&input.comparison)
                .bind(input.threshold)
                .bind(input.for_secs)
                .bind(input.hysteresis)
                .bind(input.keep_firing_for_secs)
                .bind(&input.severity)
                .bind(input.repeat_interval_secs)
                .bind($crate::store::outbox::hosts_json(&input.hosts))
                .bind(input.enabled)
                .bind(now)
                .fetch_one(self.w())
                .await?;
                Ok(row.into())
            }

            async fn update_rule_impl(&self, id: i64, input: &RuleInput, now: i64) -> StoreResult<Option<Rule>> {
                let mut tx = self.w().begin().await?;
                let row = sqlx::query_as::<_, $crate::store::outbox::RuleRow>(concat!(
                    "UPDATE rules SET name = $1, metric = $2, comparison = $3, threshold = $4, for_secs = $5, hysteresis = $6, \
                     keep_firing_for_secs = $7, severity = $8, repeat_interval_secs = $9, hosts = $10, enabled = $11, updated_at = $12 \
                     WHERE id = $13 RETURNING ",
                    $crate::store::outbox::rule_columns!()
                ))
                .bind(&input.name)
                .bind(&input.metric)
                .bind(&input.comparison)
                .bind(input.threshold)
                .bind(input.for_secs)
                .bind(input.hysteresis)
                .bind(input.keep_firing_for_secs)
                .bind(&input.severity)
                .bind(input.repeat_interval_secs)
                .bind($crate::store::outbox::hosts_json(&input.hosts))
                .bind(input.enabled)
                .bind(now)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let rule = Rule::from(row);
                // A threshold rule keeps /thresholds and /admin/thresholds telling the truth.
                if rule.managed.as_deref() == Some("threshold") {
                    let sql = match (rule.owner_id.is_some(), rule.metric.as_str()) {
                        (false, "cpu") => Some("UPDATE global_thresholds SET cpu = $1, updated_at = $2 WHERE id = 1 AND $3 IS NULL"),
                        (false, "memory") => Some("UPDATE global_thresholds SET memory = $1, updated_at = $2 WHERE id = 1 AND $3 IS NULL"),
                        (true, "cpu") => Some("UPDATE user_thresholds SET cpu = $1, updated_at = $2 WHERE user_id = $3"),
                        (true, "memory") => Some("UPDATE user_thresholds SET memory = $1, updated_at = $2 WHERE user_id = $3"),
                        _ => None,
                    };
                    if let Some(sql) = sql {
                        sqlx::query(sql).bind(rule.threshold).bind(now).bind(rule.owner_id).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(Some(rule))
            }

            async fn delete_rule_impl(&self, id: i64) -> StoreResult<bool> {
                let r = sqlx::query("DELETE FROM rules WHERE id = $1").bind(id).execute(self.w()).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn rule_states_impl(&self) -> StoreResult<Vec<RuleStateRow>> {
                Ok(sqlx::query_as::<_, RuleStateRow>(
                    "SELECT rule_id, host_id, state, active_since, alert_id, clear_since, last_notified_at, peak FROM rule_state ORDER BY rule_id, host_id",
                )
                .fetch_all(self.r())
                .await?)
            }

            /// With a fence, the changes only commit while its holder still holds its
            /// lease (renewed in the same transaction), and its per-host evaluation cursors
            /// commit with them: `None` means the lease was lost and nothing was written.
            async fn apply_rule_changes_impl(&self, changes: &[RuleChange], now: i64, fence: Option<&Fence>) -> StoreResult<Option<(Vec<i64>, usize)>> {
                if changes.is_empty() && fence.is_none() {
                    return Ok(Some((Vec::new(), 0)));
                }
                const SAVE: &str = "INSERT INTO rule_state (rule_id, host_id, state, active_since, alert_id, clear_since, last_notified_at, peak) \
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (rule_id, host_id) DO UPDATE SET state = excluded.state, \
                    active_since = excluded.active_since, alert_id = excluded.alert_id, clear_since = excluded.clear_since, \
                    last_notified_at = excluded.last_notified_at, peak = excluded.peak";
                let mut tx = self.w().begin().await?;
                if let Some(f) = fence {
                    // Renewing first also takes the lease row's lock (PostgreSQL), so a
                    // replica that takes the lease over waits for this transaction.
                    let renewed = sqlx::query(
                        "UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND expires_at >= $4",
                    )
                    .bind(f.expires_at)
                    .bind(&f.lease)
                    .bind(&f.holder)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if renewed.rows_affected() == 0 {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                    if !f.cursors.is_empty() {
                        // One statement for every host, as a JSON array of [id, ts] pairs.
                        let pairs = serde_json::to_string(&f.cursors).map_err(|e| StoreError::Other(e.to_string()))?;
                        sqlx::query(Self::CURSORS_SQL).bind(pairs).execute(&mut *tx).await?;
                    }
                }
                let mut fired_ids = Vec::new();
                // Alerts fired earlier in this batch, for states that also resolve in it.
                let mut batch: std::collections::HashMap<(i64, i64), i64> = Default::default();
                let mut queued = 0usize;
                for change in changes {
                    let (state, alert_id, notify) = match change {
                        RuleChange::Save(s) => (Some(s), s.alert_id.or_else(|| batch.get(&(s.rule_id, s.host_id)).copied()), None),
                        RuleChange::Clear { rule_id, host_id } => {
                            sqlx::query("DELETE FROM rule_state WHERE rule_id = $1 AND host_id = $2")
                                .bind(rule_id).bind(host_id).execute(&mut *tx).await?;
                            continue;
                        }
                        RuleChange::Fire { alert: a, state, notify } => {
                            let id: i64 = sqlx::query_scalar(
                                "INSERT INTO alerts (host_id, owner_id, metric, value, threshold, peak, ts, resolved_at, rule_id, rule_name, comparison, severity) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                            )
                            .bind(a.host_id)
                            .bind(a.owner_id)
                            .bind(&a.metric)
                            .bind(a.value)
                            .bind(a.threshold)
                            .bind(a.peak)
                            .bind(a.ts)
                            .bind(a.resolved_at)
                            .bind(a.rule_id)
                            .bind(&a.rule_name)
                            .bind(&a.comparison)
                            .bind(&a.severity)
                            .fetch_one(&mut *tx)
                            .await?;
                            fired_ids.push(id);
                            batch.insert((state.rule_id, state.host_id), id);
                            (Some(state), Some(id), notify.as_ref())
                        }
                        RuleChange::Repeat { state, notify } => {
                            let id = state.alert_id.or_else(|| batch.get(&(state.rule_id, state.host_id)).copied());
                            (Some(state), id, notify.as_ref())
                        }
                        RuleChange::Resolve { rule_id, host_id, alert_id, resolved_at, peak, notify } => {
                            let id = alert_id.or_else(|| batch.get(&(*rule_id, *host_id)).copied());
                            sqlx::query("DELETE FROM rule_state WHERE rule_id = $1 AND host_id = $2")
                                .bind(rule_id).bind(host_id).execute(&mut *tx).await?;
                            let mut closed = false;
                            if let Some(id) = id {
                                let r = sqlx::query(
                                    "UPDATE alerts SET resolved_at = $1, peak = $2 WHERE id = $3 AND resolved_at IS NULL",
                                )
                                .bind(resolved_at)
                                .bind(peak)
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                                closed = r.rows_affected() > 0;
                            }
                            // An alert that was already closed (by another path) is not
                            // announced twice.
                            (None, id, if closed { notify.as_ref() } else { None })
                        }
                    };
                    if let Some(s) = state {
                        sqlx::query(SAVE)
                            .bind(s.rule_id)
                            .bind(s.host_id)
                            .bind(&s.state)
                            .bind(s.active_since)
                            .bind(alert_id)
                            .bind(s.clear_since)
                            .bind(s.last_notified_at)
                            .bind(s.peak)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if let Some(n) = notify {
                        let channels: Vec<i64> = sqlx::query_scalar(
                            "SELECT id FROM channels WHERE enabled = TRUE AND ((owner_id IS NULL AND $1 IS NULL) OR owner_id = $1) ORDER BY id",
                        )
                        .bind(n.owner_id)
                        .fetch_all(&mut *tx)
                        .await?;
                        let body = $crate::store::outbox::payload_text(&n.payload, alert_id);
                        for channel_id in channels {
                            sqlx::query(
                                "INSERT INTO deliveries (message_id, channel_id, alert_id, event, payload, state, attempts, next_attempt_at, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
                            )
                            .bind($crate::notify::sign::new_message_id())
                            .bind(channel_id)
                            .bind(alert_id)
                            .bind(&n.event)
                            .bind(&body)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            queued += 1;
                        }
                    }
                }
                tx.commit().await?;
                Ok(Some((fired_ids, queued)))
            }

            async fn try_lease_impl(&self, name: &str, holder: &str, now: i64, ttl_ms: i64) -> StoreResult<bool> {
                // One statement, so two replicas racing for an expired lease cannot both
                // win: the row is inserted once, or updated by whoever locks it first and
                // then fails the other's WHERE.
                let r = sqlx::query(
                    "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
                     acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END \
                     WHERE leases.holder = excluded.holder OR leases.expires_at < excluded.acquired_at",
                )
                .bind(name)
                .bind(holder)
                .bind(now)
                .bind(now.saturating_add(ttl_ms))
                .execute(self.w())
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn release_lease_impl(&self, name: &str, holder: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            async fn lease_impl(&self, name: &str) -> StoreResult<Option<Lease>> {
                Ok(sqlx::query_as::<_, Lease>("SELECT name, holder, acquired_at, expires_at FROM leases WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.r())
                    .await?)
            }

            async fn unevaluated_agent_samples_impl(&self, floor: i64, limit: i64) -> StoreResult<Vec<Sample>> {
                // Per agent host, a range scan of its (host_id, ts) key from its own
                // cursor: the cost follows the new rows, not the hosts' history. Each
                // engine spells the join so its planner cannot pick a full scan.
                Ok(sqlx::query_as::<_, Sample>(Self::UNEVALUATED_SQL)
                .bind(floor)
                .bind(limit)
                .fetch_all(self.r())
                .await?)
            }

            async fn list_channels_impl(&self, scope: Scope) -> StoreResult<Vec<Channel>> {
                let (k, o) = $crate::store::outbox::scope_params(scope);
                Ok(sqlx::query_as::<_, Channel>(concat!(
                    "SELECT ", $crate::store::outbox::channel_columns!(), " FROM channels WHERE ",
                    $crate::store::outbox::scope_filter!("owner_id", "1", "2"),
                    " ORDER BY owner_id IS NOT NULL, owner_id, id"
                ))
                .bind(k)
                .bind(o)
                .fetch_all(self.r())
                .await?)
            }

            async fn channel_impl(&self, id: i64) -> StoreResult<Option<Channel>> {
                Ok(sqlx::query_as::<_, Channel>(concat!(
                    "SELECT ", $crate::store::outbox::channel_columns!(), " FROM channels WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.r())
                .await?)
            }

            async fn create_channel_impl(&self, owner_id: Option<i64>, input: &ChannelInput, secret: Option<&str>, now: i64) -> StoreResult<Channel> {
                Ok(sqlx::query_as::<_, Channel>(concat!(
                    "INSERT INTO channels (owner_id, name, kind, target, secret, source, enabled, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'user', $6, $7, $7) RETURNING ",
                    $crate::store::outbox::channel_columns!()
                ))
                .bind(owner_id)
                .bind(&input.name)
                .bind(&input.kind)
                .bind(&input.target)
                .bind(secret)
                .bind(input.enabled)
                .bind(now)
                .fetch_one(self.w())
                .await?)
            }

            async fn update_channel_impl(&self, id: i64, input: &ChannelInput, now: i64) -> StoreResult<Option<Channel>> {
                // Enabling clears the reason it was disabled (e.g. a 410 from the receiver).
                Ok(sqlx::query_as::<_, Channel>(concat!(
                    "UPDATE channels SET name = $1, target = $2, enabled = $3, \
                     disabled_reason = CASE WHEN $3 THEN NULL ELSE disabled_reason END, updated_at = $4 \
                     WHERE id = $5 AND source = 'user' RETURNING ",
                    $crate::store::outbox::channel_columns!()
                ))
                .bind(&input.name)
                .bind(&input.target)
                .bind(input.enabled)
                .bind(now)
                .bind(id)
                .fetch_optional(self.w())
                .await?)
            }

            async fn set_channel_secret_impl(&self, id: i64, secret: &str, now: i64) -> StoreResult<bool> {
                let r = sqlx::query("UPDATE channels SET secret = $1, updated_at = $2 WHERE id = $3 AND kind = 'webhook'")
                    .bind(secret)
                    .bind(now)
                    .bind(id)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_channel_impl(&self, id: i64) -> StoreResult<bool> {
                let r = sqlx::query("DELETE FROM channels WHERE id = $1 AND source = 'user'").bind(id).execute(self.w()).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn sync_env_channel_impl(&self, kind: &str, channel: Option<&EnvChannel>, generated_secret: &str, now: i64) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM channels WHERE source = 'env' AND kind = $1")
                    .bind(kind)
                    .fetch_optional(&mut *tx)
                    .await?;
                match (existing, channel) {
                    (Some(id), Some(c)) => {
                        sqlx::query(
                            "UPDATE channels SET name = $1, target = $2, secret = COALESCE($3, secret, $4), enabled = TRUE, \
                             disabled_reason = NULL, updated_at = $5 WHERE id = $6",
                        )
                        .bind(&c.name)
                        .bind(&c.target)
                        .bind(c.secret.as_deref())
                        .bind(generated_secret)
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    (None, Some(c)) => {
                        let secret = if kind == "webhook" { Some(c.secret.as_deref().unwrap_or(generated_secret)) } else { None };
                        sqlx::query(
                            "INSERT INTO channels (owner_id, name, kind, target, secret, source, enabled, created_at, updated_at) \
                             VALUES (NULL, $1, $2, $3, $4, 'env', TRUE, $5, $5)",
                        )
                        .bind(&c.name)
                        .bind(kind)
                        .bind(&c.target)
                        .bind(secret)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    (Some(id), None) => {
                        sqlx::query(
                            "UPDATE channels SET enabled = FALSE, disabled_reason = 'no longer configured in the environment', updated_at = $1 \
                             WHERE id = $2 AND enabled = TRUE",
                        )
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    (None, None) => {}
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_deliveries_impl(&self, worker: &str, now: i64, lease_ms: i64, limit: i64, skip_channels: &[i64]) -> StoreResult<Vec<ClaimedDelivery>> {
                let skip = $crate::store::outbox::ids_json(skip_channels);
                let mut tx = self.w().begin().await?;
                let claimed = sqlx::query(Self::CLAIM_SQL)
                    .bind(now.saturating_add(lease_ms))
                    .bind(worker)
                    .bind(now)
                    .bind(limit)
                    .bind(skip)
                    .execute(&mut *tx)
                    .await?;
                if claimed.rows_affected() == 0 {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let rows = sqlx::query_as::<_, ClaimedDelivery>(
                    "SELECT d.id, d.message_id, d.channel_id, d.event, d.payload, d.attempts, c.kind, c.target, c.secret, c.source, \
                     c.enabled AS channel_enabled FROM deliveries d JOIN channels c ON c.id = d.channel_id \
                     WHERE d.locked_by = $1 AND d.state = 'pending' ORDER BY d.next_attempt_at, d.id",
                )
                .bind(worker)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows)
            }

            async fn record_attempts_impl(&self, records: &[AttemptRecord]) -> StoreResult<usize> {
                if records.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.w().begin().await?;
                let mut held = 0usize;
                for a in records {
                // Numbered across "send again" series; skipped if the delivery went with
                // its channel meanwhile.
                sqlx::query(
                    "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, error, outcome, worker) \
                     SELECT $1, COALESCE((SELECT MAX(attempt) FROM delivery_attempts WHERE delivery_id = $1), 0) + 1, $2, $3, $4, $5, $6, $7 \
                     WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = $1)",
                )
                .bind(a.delivery_id)
                .bind(a.started_at)
                .bind(a.duration_ms)
                .bind(a.status)
                .bind(a.error.as_deref())
                .bind(&a.outcome)
                .bind(&a.worker)
                .execute(&mut *tx)
                .await?;
                let finished = a.started_at.saturating_add(a.duration_ms);
                let (state, next) = match a.outcome.as_str() {
                    "delivered" => ("delivered", None),
                    "retry" => ("pending", a.next_attempt_at),
                    _ => ("dead", None),
                };
                let r = sqlx::query(
                    "UPDATE deliveries SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), last_status = $3, last_error = $4, \
                     finished_at = CASE WHEN $1 = 'pending' THEN NULL ELSE $5 END, locked_until = NULL, locked_by = NULL \
                     WHERE id = $6 AND locked_by = $7 AND state = 'pending'",
                )
                .bind(state)
                .bind(next)
                .bind(a.status)
                .bind(a.error.as_deref())
                .bind(finished)
                .bind(a.delivery_id)
                .bind(&a.worker)
                .execute(&mut *tx)
                .await?;
                if let (Some(reason), true) = (&a.disable_channel, r.rows_affected() > 0) {
                    sqlx::query(
                        "UPDATE channels SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
                         WHERE id = (SELECT channel_id FROM deliveries WHERE id = $3)",
                    )
                    .bind(reason)
                    .bind(finished)
                    .bind(a.delivery_id)
                    .execute(&mut *tx)
                    .await?;
                }
                if r.rows_affected() > 0 {
                    held += 1;
                }
                }
                tx.commit().await?;
                Ok(held)
            }

            async fn enqueue_test_impl(&self, channel_id: i64, payload: &serde_json::Value, message_id: &str, now: i64) -> StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO deliveries (message_id, channel_id, alert_id, event, payload, state, attempts, next_attempt_at, created_at) \
                     VALUES ($1, $2, NULL, 'test', $3, 'pending', 0, $4, $4) RETURNING id",
                )
                .bind(message_id)
                .bind(channel_id)
                .bind(payload.to_string())
                .bind(now)
                .fetch_one(self.w())
                .await?)
            }

            async fn list_deliveries_impl(&self, scope: Scope, f: &DeliveryFilter, limit: i64, offset: i64) -> StoreResult<(Vec<Delivery>, i64)> {
                let (k, o) = $crate::store::outbox::scope_params(scope);
                let rows = sqlx::query_as::<_, Delivery>(concat!(
                    $crate::store::outbox::delivery_select!(), " WHERE ",
                    $crate::store::outbox::scope_filter!("c.owner_id", "1", "2"),
                    " AND ($3 IS NULL OR d.state = $3) AND ($4 IS NULL OR d.channel_id = $4) ORDER BY d.id DESC LIMIT $5 OFFSET $6"
                ))
                .bind(k)
                .bind(o)
                .bind(f.state.as_deref())
                .bind(f.channel_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(self.r())
                .await?;
                let total: i64 = sqlx::query_scalar(concat!(
                    "SELECT COUNT(*) FROM deliveries d JOIN channels c ON c.id = d.channel_id WHERE ",
                    $crate::store::outbox::scope_filter!("c.owner_id", "1", "2"),
                    " AND ($3 IS NULL OR d.state = $3) AND ($4 IS NULL OR d.channel_id = $4)"
                ))
                .bind(k)
                .bind(o)
                .bind(f.state.as_deref())
                .bind(f.channel_id)
                .fetch_one(self.r())
                .await?;
                Ok((rows, total))
            }

            async fn delivery_impl(&self, id: i64) -> StoreResult<Option<Delivery>> {
                Ok(sqlx::query_as::<_, Delivery>(concat!($crate::store::outbox::delivery_select!(), " WHERE d.id = $1"))
                    .bind(id)
                    .fetch_optional(self.r())
                    .await?)
            }

            async fn delivery_attempts_impl(&self, delivery_id: i64) -> StoreResult<Vec<DeliveryAttempt>> {
                Ok(sqlx::query_as::<_, DeliveryAttempt>(
                    "SELECT delivery_id, attempt, started_at, duration_ms, status, error, outcome FROM delivery_attempts \
                     WHERE delivery_id = $1 ORDER BY id",
                )
                .bind(delivery_id)
                .fetch_all(self.r())
                .await?)
            }

            async fn retry_delivery_impl(&self, id: i64, now: i64) -> StoreResult<bool> {
                // A fresh series of attempts under the same message id.
                let r = sqlx::query(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, finished_at = NULL, \
                     locked_until = NULL, locked_by = NULL WHERE id = $2 AND state = 'dead' \
                     AND EXISTS (SELECT 1 FROM channels c WHERE c.id = deliveries.channel_id AND c.enabled = TRUE)",
                )
                .bind(now)
                .bind(id)
                .execute(self.w())
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn outbox_stats_impl(&self) -> StoreResult<OutboxStats> {
                let (pending, dead, delivered, oldest): (i64, i64, i64, Option<i64>) = sqlx::query_as(
                    "SELECT COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN state = 'delivered' THEN 1 ELSE 0 END), 0), \
                     MIN(CASE WHEN state = 'pending' THEN created_at END) FROM deliveries",
                )
                .fetch_one(self.r())
                .await?;
                Ok(OutboxStats { pending, dead, delivered, oldest_pending_at: oldest })
            }

            async fn recent_test_count_impl(&self, owner: Option<i64>, since: i64) -> StoreResult<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM deliveries d JOIN channels c ON c.id = d.channel_id \
                     WHERE d.event = 'test' AND d.created_at >= $2 AND ((c.owner_id IS NULL AND $1 IS NULL) OR c.owner_id = $1)",
                )
                .bind(owner)
                .bind(since)
                .fetch_one(self.r())
                .await?)
            }

            async fn next_delivery_due_impl(&self, skip_channels: &[i64]) -> StoreResult<Option<i64>> {
                Ok(sqlx::query_scalar(Self::NEXT_DUE_SQL)
                    .bind($crate::store::outbox::ids_json(skip_channels))
                    .fetch_one(self.r())
                    .await?)
            }

            async fn release_deliveries_impl(&self, claims: &[(i64, String)]) -> StoreResult<usize> {
                if claims.is_empty() {
                    return Ok(0);
                }
                // The claim counted an attempt that was never made: give it back.
                let mut tx = self.w().begin().await?;
                let mut released = 0usize;
                for (id, worker) in claims {
                    let r = sqlx::query(
                        "UPDATE deliveries SET locked_until = NULL, locked_by = NULL, attempts = attempts - 1 \
                         WHERE id = $1 AND locked_by = $2 AND state = 'pending'",
                    )
                    .bind(id)
                    .bind(worker)
                    .execute(&mut *tx)
                    .await?;
                    released += usize::try_from(r.rows_affected()).unwrap_or(0);
                }
                tx.commit().await?;
                Ok(released)
            }
        }
    };
}

pub(super) use impl_outbox;
pub(crate) use {channel_columns, delivery_select, rule_columns, scope_filter};
