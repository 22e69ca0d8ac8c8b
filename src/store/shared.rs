//! The SQL both engines share. sqlx binds `$N` placeholders on SQLite as well as on
//! PostgreSQL, and both dialects support `ON CONFLICT` and `RETURNING`, so one body serves
//! both implementations; each engine supplies its own pools (`r()` for reads, `w()` for
//! writes) and anything dialect-specific.

// Shared fragments are macros so every statement is one `&'static str` built by `concat!`
// at compile time. The exception is the rollup statements (`rollup.rs`): they are generated
// once, at first use, from one metric list, so the columns they name cannot drift apart.
macro_rules! sample_columns {
    () => {
        "host_id, ts, cpu, memory, memory_used, memory_total, swap, load1, load5, load15, disk, disk_read_bps, disk_write_bps, net_rx_bps, net_tx_bps, processes, uptime"
    };
}

macro_rules! host_columns {
    () => {
        "id, name, created_at, last_seen_at, agent_token_hash IS NOT NULL AS has_agent_token, agent_version, interval_ms, created_by"
    };
}

macro_rules! user_columns {
    () => {
        "id, username, password_hash, disabled, created_at, session_epoch"
    };
}

macro_rules! analysis_columns {
    () => {
        "id, user_id, created_at, name, source, bytes, lines, errors, levels"
    };
}

macro_rules! alert_select {
    () => {
        "SELECT a.id, a.host_id, h.name AS host, a.owner_id, a.metric, a.value, a.threshold, a.peak, a.ts, a.resolved_at, a.rule_id, a.rule_name, a.comparison, a.severity FROM alerts a JOIN hosts h ON h.id = a.host_id"
    };
}

/// Implements `Store` for an engine type that has `r()`/`w()` pool accessors, `BACKEND`,
/// and `close_pools()`.
macro_rules! impl_store {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $ty {
            fn backend(&self) -> $crate::store::Backend {
                Self::BACKEND
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(self.r()).await?;
                Ok(())
            }

            async fn close(&self) {
                self.close_pools().await;
            }

            async fn create_user(&self, username: &str, password_hash: &str, now: i64) -> StoreResult<User> {
                let user = sqlx::query_as::<_, User>(
                    concat!("INSERT INTO users (username, password_hash, disabled, created_at) VALUES ($1, $2, FALSE, $3) RETURNING ", $crate::store::shared::user_columns!()),
                )
                .bind(username)
                .bind(password_hash)
                .bind(now)
                .fetch_one(self.w())
                .await?;
                Ok(user)
            }

            async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
                Ok(sqlx::query_as::<_, User>(
                    concat!("SELECT ", $crate::store::shared::user_columns!(), " FROM users WHERE lower(username) = lower($1)"),
                )
                .bind(username)
                .fetch_optional(self.r())
                .await?)
            }

            async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
                Ok(sqlx::query_as::<_, User>(
                    concat!("SELECT ", $crate::store::shared::user_columns!(), " FROM users WHERE id = $1"),
                )
                .bind(id)
                .fetch_optional(self.r())
                .await?)
            }

            async fn list_users(&self) -> StoreResult<Vec<User>> {
                Ok(sqlx::query_as::<_, User>(
                    concat!("SELECT ", $crate::store::shared::user_columns!(), " FROM users ORDER BY id"),
                )
                .fetch_all(self.r())
                .await?)
            }

            async fn set_user_disabled(&self, id: i64, disabled: bool) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                let r = sqlx::query("UPDATE users SET disabled = $1, session_epoch = session_epoch + 1 WHERE id = $2")
                    .bind(disabled)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                // A disabled account may be a compromised one: its API tokens do not come
                // back when it is enabled again.
                if disabled {
                    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(r.rows_affected() > 0)
            }

            async fn end_user_sessions(&self, id: i64) -> StoreResult<bool> {
                let r = sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1")
                    .bind(id)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_tokens(&self, user_id: i64, now: i64) -> StoreResult<Vec<TokenInfo>> {
                Ok(sqlx::query_as::<_, TokenInfo>(
                    "SELECT token_hash, name, created_at, expires_at, last_used_at FROM api_tokens \
                     WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC",
                )
                .bind(user_id)
                .bind(now)
                .fetch_all(self.r())
                .await?)
            }

            async fn delete_user_token(&self, user_id: i64, token_hash: &str) -> StoreResult<bool> {
                let r = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND token_hash = $2")
                    .bind(user_id)
                    .bind(token_hash)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_hosts(&self) -> StoreResult<Vec<Host>> {
                Ok(sqlx::query_as::<_, Host>(concat!("SELECT ", $crate::store::shared::host_columns!(), " FROM hosts ORDER BY name"))
                    .fetch_all(self.r())
                    .await?)
            }

            async fn chart_buckets(&self, host_id: i64, tier: Tier, start: i64, end: i64, bucket_ms: i64) -> StoreResult<Vec<ChartBucket>> {
                let bucket_ms = bucket_ms.max(1);
                let rollup = match tier {
                    Tier::Hour => Some($crate::store::rollup::CHART_1H.as_str()),
                    Tier::Minute => Some($crate::store::rollup::CHART_1M.as_str()),
                    Tier::Raw => None,
                };
                if let Some(sql) = rollup {
                    let step = tier.step_ms();
                    // Groups of whole rollup buckets, at least one bucket wide.
                    return Ok(sqlx::query_as::<_, ChartBucket>(sql)
                        .bind(host_id)
                        .bind(start.div_euclid(step) * step)
                        .bind(end)
                        .bind(bucket_ms.max(step))
                        .fetch_all(self.r())
                        .await?);
                }
                // One pass over the raw range for every charted metric.
                Ok(sqlx::query_as::<_, ChartBucket>(
                    "SELECT MIN(ts) AS ts, MIN(cpu) AS cpu_min, MAX(cpu) AS cpu_max, \
                       MIN(memory) AS memory_min, MAX(memory) AS memory_max, MIN(swap) AS swap_min, MAX(swap) AS swap_max, \
                       MIN(disk) AS disk_min, MAX(disk) AS disk_max, MIN(load1) AS load1_min, MAX(load1) AS load1_max, \
                       MIN(net_rx_bps) AS net_rx_min, MAX(net_rx_bps) AS net_rx_max, \
                       MIN(net_tx_bps) AS net_tx_min, MAX(net_tx_bps) AS net_tx_max \
                     FROM samples WHERE host_id = $1 AND ts >= $2 AND ts <= $3 \
                     GROUP BY (ts - $2) / $4 ORDER BY MIN(ts) ASC",
                )
                .bind(host_id)
                .bind(start)
                .bind(end)
                .bind(bucket_ms)
                .fetch_all(self.r())
                .await?)
            }

            async fn list_alerts_filtered(
                &self,
                viewer: i64,
                filter: &AlertFilter,
                limit: i64,
                offset: i64,
            ) -> StoreResult<(Vec<Alert>, i64)> {
                // NULL parameters switch a condition off, so the statement stays static.
                let rows = sqlx::query_as::<_, Alert>(concat!(
                    $crate::store::shared::alert_select!(),
                    " WHERE (a.owner_id IS NULL OR a.owner_id = $1) AND ($2 IS NULL OR a.metric = $2) \
                      AND ($3 IS NULL OR ($3 = TRUE AND a.resolved_at IS NULL) OR ($3 = FALSE AND a.resolved_at IS NOT NULL)) \
                      ORDER BY a.ts DESC, a.id DESC LIMIT $4 OFFSET $5"
                ))
                .bind(viewer)
                .bind(filter.metric.as_deref())
                .bind(filter.firing)
                .bind(limit)
                .bind(offset)
                .fetch_all(self.r())
                .await?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM alerts a WHERE (a.owner_id IS NULL OR a.owner_id = $1) AND ($2 IS NULL OR a.metric = $2) \
                     AND ($3 IS NULL OR ($3 = TRUE AND a.resolved_at IS NULL) OR ($3 = FALSE AND a.resolved_at IS NOT NULL))",
                )
                .bind(viewer)
                .bind(filter.metric.as_deref())
                .bind(filter.firing)
                .fetch_one(self.r())
                .await?;
                Ok((rows, total))
            }

            fn session_pool(&self) -> SessionPool {
                self.session_pool_impl()
            }

            async fn set_password_hash(&self, user_id: i64, password_hash: &str) -> StoreResult<()> {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            async fn change_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                sqlx::query("UPDATE users SET password_hash = $1, session_epoch = session_epoch + 1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_token(&self, t: &NewToken) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&t.token_hash)
                .bind(t.user_id)
                .bind(&t.name)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(self.w())
                .await?;
                Ok(())
            }

            async fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>> {
                let row: Option<(i64, String, String, bool, i64, i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT u.id, u.username, u.password_hash, u.disabled, u.created_at, u.session_epoch, t.expires_at, t.last_used_at \
                     FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(self.r())
                .await?;
                Ok(row.map(|(id, username, password_hash, disabled, created_at, session_epoch, expires_at, last_used_at)| TokenOwner {
                    user: User { id, username, password_hash, disabled, created_at, session_epoch },
                    expires_at,
                    last_used_at,
                }))
            }

            async fn touch_token(&self, token_hash: &str, now: i64) -> StoreResult<()> {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
                    .bind(now)
                    .bind(token_hash)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            async fn delete_token(&self, token_hash: &str) -> StoreResult<bool> {
                let r = sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn purge_expired_tokens(&self, now: i64) -> StoreResult<u64> {
                let r = sqlx::query("DELETE FROM api_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected())
            }

            async fn login_locked_until(&self, keys: &[String], now: i64) -> StoreResult<Option<i64>> {
                let mut latest: Option<i64> = None;
                for key in keys {
                    let until: Option<i64> = sqlx::query_scalar(
                        "SELECT locked_until FROM login_failures WHERE key = $1 AND locked_until > $2",
                    )
                    .bind(key)
                    .bind(now)
                    .fetch_optional(self.r())
                    .await?;
                    latest = latest.max(until);
                }
                Ok(latest)
            }

            async fn record_login_failure(&self, key: &str, now: i64, window_ms: i64) -> StoreResult<i64> {
                // One statement, so concurrent failures never lose a count; a failure after
                // the window starts a fresh count.
                let failures: i64 = sqlx::query_scalar(
                    "INSERT INTO login_failures (key, failures, first_failure_at, locked_until) VALUES ($1, 1, $2, 0) \
                     ON CONFLICT (key) DO UPDATE SET \
                       failures = CASE WHEN login_failures.first_failure_at < $3 THEN 1 ELSE login_failures.failures + 1 END, \
                       first_failure_at = CASE WHEN login_failures.first_failure_at < $3 THEN $2 ELSE login_failures.first_failure_at END \
                     RETURNING failures",
                )
                .bind(key)
                .bind(now)
                .bind(now - window_ms)
                .fetch_one(self.w())
                .await?;
                Ok(failures)
            }

            async fn lock_login(&self, key: &str, until: i64) -> StoreResult<()> {
                sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE key = $2 AND locked_until < $1")
                    .bind(until)
                    .bind(key)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM login_failures WHERE key = $1")
                    .bind(key)
                    .execute(self.w())
                    .await?;
                Ok(())
            }

            async fn purge_login_failures(&self, older_than: i64) -> StoreResult<u64> {
                let r = sqlx::query("DELETE FROM login_failures WHERE first_failure_at < $1 AND locked_until < $1")
                    .bind(older_than)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected())
            }

            async fn upsert_host(&self, name: &str, now: i64) -> StoreResult<i64> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO hosts (name, created_at) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
                )
                .bind(name)
                .bind(now)
                .fetch_one(self.w())
                .await?;
                Ok(id)
            }

            async fn host_id(&self, name: &str) -> StoreResult<Option<i64>> {
                Ok(sqlx::query_scalar("SELECT id FROM hosts WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.r())
                    .await?)
            }

            async fn host_count(&self) -> StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM hosts").fetch_one(self.r()).await?)
            }

            async fn insert_samples(&self, samples: &[Sample]) -> StoreResult<()> {
                if samples.is_empty() {
                    return Ok(());
                }
                let mut tx = self.w().begin().await?;
                let refs: Vec<&Sample> = samples.iter().collect();
                // A duplicate (retried) sample must not be counted twice in rollups.
                let inserted = Self::insert_new_samples(&mut tx, &refs).await?;
                let mut last_seen: std::collections::BTreeMap<i64, i64> = Default::default();
                for s in &inserted {
                    let e = last_seen.entry(s.host_id).or_insert(s.ts);
                    *e = (*e).max(s.ts);
                }
                Self::merge_rollups(&mut tx, &inserted).await?;
                for (host_id, ts) in last_seen {
                    sqlx::query("UPDATE hosts SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)")
                        .bind(ts)
                        .bind(host_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn latest_samples(&self) -> StoreResult<Vec<HostSample>> {
                // MAX(ts) per host is one seek on the (host_id, ts) primary key on both
                // engines, and the join is a key lookup: cost grows with hosts, not samples.
                Ok(sqlx::query_as::<_, HostSample>(
                    "SELECT h.name AS host, s.host_id, s.ts, s.cpu, s.memory, s.memory_used, s.memory_total, s.swap, \
                     s.load1, s.load5, s.load15, s.disk, s.disk_read_bps, s.disk_write_bps, s.net_rx_bps, s.net_tx_bps, \
                     s.processes, s.uptime \
                     FROM hosts h JOIN samples s ON s.host_id = h.id \
                     AND s.ts = (SELECT MAX(m.ts) FROM samples m WHERE m.host_id = h.id) \
                     ORDER BY h.name",
                )
                .fetch_all(self.r())
                .await?)
            }

            fn pool_stats(&self) -> Vec<PoolStats> {
                self.pool_stats_impl()
            }
            fn free_disk_bytes(&self) -> Option<u64> {
                self.free_disk_bytes_impl()
            }

            async fn recent_samples(&self, host_id: i64, limit: i64) -> StoreResult<Vec<Sample>> {
                let sql = concat!(
                    "SELECT ", $crate::store::shared::sample_columns!(),
                    " FROM samples WHERE host_id = $1 ORDER BY ts DESC LIMIT $2"
                );
                Ok(sqlx::query_as::<_, Sample>(sql).bind(host_id).bind(limit).fetch_all(self.r()).await?)
            }

            async fn count_samples_between(&self, host_id: i64, start: i64, end: i64) -> StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM samples WHERE host_id = $1 AND ts >= $2 AND ts <= $3")
                    .bind(host_id)
                    .bind(start)
                    .bind(end)
                    .fetch_one(self.r())
                    .await?)
            }

            async fn samples_between(&self, host_id: i64, start: i64, end: i64) -> StoreResult<Vec<Sample>> {
                let sql = concat!(
                    "SELECT ", $crate::store::shared::sample_columns!(),
                    " FROM samples WHERE host_id = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts ASC"
                );
                Ok(sqlx::query_as::<_, Sample>(sql)
                    .bind(host_id)
                    .bind(start)
                    .bind(end)
                    .fetch_all(self.r())
                    .await?)
            }

            async fn count_samples_capped(&self, host_id: i64, start: i64, end: i64, cap: i64) -> StoreResult<i64> {
                // The LIMIT inside bounds the work by `cap`, not by the size of the range.
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT 1 AS one FROM samples WHERE host_id = $1 AND ts >= $2 AND ts <= $3 LIMIT $4) AS capped",
                )
                .bind(host_id)
                .bind(start)
                .bind(end)
                .bind(cap.max(0))
                .fetch_one(self.r())
                .await?)
            }

            async fn oldest_in_tier(&self, host_id: i64, tier: Tier) -> StoreResult<Option<i64>> {
                // ORDER BY ... LIMIT 1 is one seek on the (host_id, time) primary key.
                let sql = match tier {
                    Tier::Raw => "SELECT ts FROM samples WHERE host_id = $1 ORDER BY ts ASC LIMIT 1",
                    Tier::Minute => "SELECT bucket FROM samples_1m WHERE host_id = $1 ORDER BY bucket ASC LIMIT 1",
                    Tier::Hour => "SELECT bucket FROM samples_1h WHERE host_id = $1 ORDER BY bucket ASC LIMIT 1",
                };
                Ok(sqlx::query_scalar(sql).bind(host_id).fetch_optional(self.r()).await?)
            }

            async fn rollup_samples(&self, tier: Tier, host_id: i64, start: i64, end: i64, bucket_ms: i64) -> StoreResult<Vec<Sample>> {
                let step = tier.step_ms();
                let bucket_ms = bucket_ms.max(step);
                let (plain, grouped) = match tier {
                    Tier::Minute => (&$crate::store::rollup::HISTORY_1M, &$crate::store::rollup::HISTORY_GROUPED_1M),
                    Tier::Hour => (&$crate::store::rollup::HISTORY_1H, &$crate::store::rollup::HISTORY_GROUPED_1H),
                    Tier::Raw => return Err(StoreError::Other("raw samples have no rollup".into())),
                };
                // Groups start at the first bucket inside the range, so every group holds
                // whole buckets and is stamped inside [start, end].
                let from = start.div_euclid(step) * step + if start.rem_euclid(step) == 0 { 0 } else { step };
                let rows = if bucket_ms == step {
                    sqlx::query_as::<_, Sample>(plain.as_str())
                        .bind(host_id)
                        .bind(from)
                        .bind(end)
                        .fetch_all(self.r())
                        .await?
                } else {
                    sqlx::query_as::<_, Sample>(grouped.as_str())
                        .bind(host_id)
                        .bind(from)
                        .bind(end)
                        .bind(bucket_ms)
                        .fetch_all(self.r())
                        .await?
                };
                Ok(rows)
            }

            async fn delete_samples_before(&self, tier: Tier, cutoff: i64, limit: i64) -> StoreResult<u64> {
                let done = sqlx::query(Self::prune_sql(tier))
                    .bind(cutoff)
                    .bind(limit.max(0))
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn rebuild_rollups(&self) -> StoreResult<u64> {
                let mut tx = self.w().begin().await?;
                let mut rows = 0;
                for sql in [$crate::store::rollup::REBUILD_1M.as_str(), $crate::store::rollup::REBUILD_1H.as_str()] {
                    rows += sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(rows)
            }

            async fn sample_stats(&self, host_id: i64, last_n: i64, since: i64) -> StoreResult<SampleStats> {
                let (avg_cpu, avg_mem): (Option<f64>, Option<f64>) = sqlx::query_as(
                    "SELECT AVG(cpu), AVG(memory) FROM (SELECT cpu, memory FROM samples WHERE host_id = $1 ORDER BY ts DESC LIMIT $2) recent",
                )
                .bind(host_id)
                .bind(last_n)
                .fetch_one(self.r())
                .await?;
                let (count, peak_cpu, peak_mem, latest): (i64, Option<f64>, Option<f64>, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MAX(cpu), MAX(memory), MAX(ts) FROM samples WHERE host_id = $1 AND ts >= $2",
                )
                .bind(host_id)
                .bind(since)
                .fetch_one(self.r())
                .await?;
                Ok(SampleStats {
                    avg_last_cpu: avg_cpu,
                    avg_last_memory: avg_mem,
                    count_24h: count,
                    peak_cpu_24h: peak_cpu,
                    peak_memory_24h: peak_mem,
                    latest_ts: latest,
                })
            }

            async fn host(&self, id: i64) -> StoreResult<Option<Host>> {
                Ok(sqlx::query_as::<_, Host>(concat!("SELECT ", $crate::store::shared::host_columns!(), " FROM hosts WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.r())
                    .await?)
            }

            async fn create_agent_host(&self, name: &str, token_hash: &str, created_by: &str, now: i64) -> StoreResult<Host> {
                Ok(sqlx::query_as::<_, Host>(concat!(
                    "INSERT INTO hosts (name, created_at, agent_token_hash, created_by) VALUES ($1, $2, $3, $4) RETURNING ",
                    $crate::store::shared::host_columns!()
                ))
                .bind(name)
                .bind(now)
                .bind(token_hash)
                .bind(created_by)
                .fetch_one(self.w())
                .await?)
            }

            async fn host_by_agent_token(&self, token_hash: &str) -> StoreResult<Option<Host>> {
                Ok(sqlx::query_as::<_, Host>(concat!("SELECT ", $crate::store::shared::host_columns!(), " FROM hosts WHERE agent_token_hash = $1"))
                    .bind(token_hash)
                    .fetch_optional(self.r())
                    .await?)
            }

            async fn agent_token_retired(&self, token_hash: &str) -> StoreResult<bool> {
                // COUNT: an integer literal is INT4 on PostgreSQL and would not decode as i64.
                let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM retired_agent_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_one(self.r())
                    .await?;
                Ok(found > 0)
            }

            async fn set_agent_token(&self, host_id: i64, token_hash: &str) -> StoreResult<bool> {
                let r = sqlx::query("UPDATE hosts SET agent_token_hash = $1 WHERE id = $2")
                    .bind(token_hash)
                    .bind(host_id)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_host(&self, host_id: i64, now: i64) -> StoreResult<bool> {
                let mut tx = self.w().begin().await?;
                // The token is remembered so the host's agent hears "deleted", not "wrong token".
                sqlx::query(
                    "INSERT INTO retired_agent_tokens (token_hash, host_name, retired_at) \
                     SELECT agent_token_hash, name, $1 FROM hosts WHERE id = $2 AND agent_token_hash IS NOT NULL \
                     ON CONFLICT (token_hash) DO NOTHING",
                )
                .bind(now)
                .bind(host_id)
                .execute(&mut *tx)
                .await?;
                // Samples, rollups, alerts, rule state and batch ids go with it (ON DELETE CASCADE).
                let r = sqlx::query("DELETE FROM hosts WHERE id = $1")
                    .bind(host_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(r.rows_affected() > 0)
            }

            async fn ingest(&self, batches: &[IngestBatch], now: i64) -> StoreResult<Vec<IngestOutcome>> {
                // Per engine: SQLite runs a statement per batch in-process, PostgreSQL a
                // fixed handful of set-based statements per commit (round trips dominate).
                Ok(self.ingest_impl(batches, now).await?)
            }

            async fn purge_ingest_batches(&self, older_than: i64) -> StoreResult<u64> {
                let r = sqlx::query("DELETE FROM ingest_batches WHERE received_at < $1")
                    .bind(older_than)
                    .execute(self.w())
                    .await?;
                Ok(r.rows_affected())
            }

            async fn global_thresholds(&self) -> StoreResult<ThresholdPair> {
                let row: Option<(f64, f64)> = sqlx::query_as("SELECT cpu, memory FROM global_thresholds WHERE id = 1")
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|(cpu, memory)| ThresholdPair { cpu, memory }).unwrap_or(ThresholdPair::DEFAULT))
            }

            async fn set_global_thresholds(&self, t: ThresholdPair, now: i64) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                // The managed global rules follow the thresholds in the same transaction.
                for (metric, value) in [("cpu", t.cpu), ("memory", t.memory)] {
                    sqlx::query("UPDATE rules SET threshold = $1, updated_at = $2 WHERE managed = 'threshold' AND owner_id IS NULL AND metric = $3")
                        .bind(value)
                        .bind(now)
                        .bind(metric)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO global_thresholds (id, cpu, memory, updated_at) VALUES (1, $1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET cpu = excluded.cpu, memory = excluded.memory, updated_at = excluded.updated_at",
                )
                .bind(t.cpu)
                .bind(t.memory)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn user_thresholds(&self, user_id: i64) -> StoreResult<Option<ThresholdPair>> {
                let row: Option<(f64, f64)> = sqlx::query_as("SELECT cpu, memory FROM user_thresholds WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(self.r())
                    .await?;
                Ok(row.map(|(cpu, memory)| ThresholdPair { cpu, memory }))
            }

            async fn set_user_thresholds(&self, user_id: i64, t: ThresholdPair, now: i64) -> StoreResult<()> {
                let mut tx = self.w().begin().await?;
                // The user's managed rules follow their thresholds in the same transaction.
                for (metric, value, name) in [("cpu", t.cpu, "CPU above my threshold"), ("memory", t.memory, "Memory above my threshold")] {
                    let updated = sqlx::query("UPDATE rules SET threshold = $1, updated_at = $2 WHERE managed = 'threshold' AND owner_id = $3 AND metric = $4")
                        .bind(value)
                        .bind(now)
                        .bind(user_id)
                        .bind(metric)
                        .execute(&mut *tx)
                        .await?;
                    if updated.rows_affected() == 0 {
                        sqlx::query(
                            "INSERT INTO rules (owner_id, name, metric, comparison, threshold, managed, created_at, updated_at) \
                             VALUES ($1, $2, $3, '>', $4, 'threshold', $5, $5)",
                        )
                        .bind(user_id)
                        .bind(name)
                        .bind(metric)
                        .bind(value)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                sqlx::query(
                    "INSERT INTO user_thresholds (user_id, cpu, memory, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET cpu = excluded.cpu, memory = excluded.memory, updated_at = excluded.updated_at",
                )
                .bind(user_id)
                .bind(t.cpu)
                .bind(t.memory)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn all_user_thresholds(&self) -> StoreResult<Vec<(i64, ThresholdPair)>> {
                let rows: Vec<(i64, f64, f64)> = sqlx::query_as(
                    "SELECT t.user_id, t.cpu, t.memory FROM user_thresholds t JOIN users u ON u.id = t.user_id \
                     WHERE u.disabled = FALSE ORDER BY t.user_id",
                )
                .fetch_all(self.r())
                .await?;
                Ok(rows.into_iter().map(|(id, cpu, memory)| (id, ThresholdPair { cpu, memory })).collect())
            }

            async fn open_alerts(&self) -> StoreResult<Vec<Alert>> {
                let sql = concat!($crate::store::shared::alert_select!(), " WHERE a.resolved_at IS NULL ORDER BY a.id");
                Ok(sqlx::query_as::<_, Alert>(sql).fetch_all(self.r()).await?)
            }

            async fn list_alerts(&self, viewer: i64, limit: i64) -> StoreResult<Vec<Alert>> {
                let sql = concat!(
                    $crate::store::shared::alert_select!(),
                    " WHERE a.owner_id IS NULL OR a.owner_id = $1 ORDER BY a.ts DESC, a.id DESC LIMIT $2"
                );
                Ok(sqlx::query_as::<_, Alert>(sql).bind(viewer).bind(limit).fetch_all(self.r()).await?)
            }

            async fn alert_stats(&self, viewer: i64, last_n: i64) -> StoreResult<AlertStats> {
                let (total, open): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), COUNT(*) - COUNT(resolved_at) FROM alerts WHERE owner_id IS NULL OR owner_id = $1",
                )
                .bind(viewer)
                .fetch_one(self.r())
                .await?;
                let breakdown: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT metric, COUNT(*) FROM alerts WHERE owner_id IS NULL OR owner_id = $1 GROUP BY metric ORDER BY metric",
                )
                .bind(viewer)
                .fetch_all(self.r())
                .await?;
                let last_timestamps: Vec<i64> = sqlx::query_scalar(
                    "SELECT ts FROM alerts WHERE owner_id IS NULL OR owner_id = $1 ORDER BY ts DESC, id DESC LIMIT $2",
                )
                .bind(viewer)
                .bind(last_n)
                .fetch_all(self.r())
                .await?;
                Ok(AlertStats { total, open, breakdown, last_timestamps })
            }

            async fn list_rules(&self, scope: Scope) -> StoreResult<Vec<Rule>> { self.list_rules_impl(scope).await }
            async fn active_rules(&self) -> StoreResult<Vec<Rule>> { self.active_rules_impl().await }
            async fn rule(&self, id: i64) -> StoreResult<Option<Rule>> { self.rule_impl(id).await }
            async fn create_rule(&self, owner_id: Option<i64>, input: &RuleInput, now: i64) -> StoreResult<Rule> { self.create_rule_impl(owner_id, input, now).await }
            async fn update_rule(&self, id: i64, input: &RuleInput, now: i64) -> StoreResult<Option<Rule>> { self.update_rule_impl(id, input, now).await }
            async fn delete_rule(&self, id: i64) -> StoreResult<bool> { self.delete_rule_impl(id).await }
            async fn rule_states(&self) -> StoreResult<Vec<RuleStateRow>> { self.rule_states_impl().await }
            async fn apply_rule_changes(&self, changes: &[RuleChange], now: i64) -> StoreResult<(Vec<i64>, usize)> {
                Ok(self.apply_rule_changes_impl(changes, now, None).await?.unwrap_or_default())
            }
            async fn apply_fenced_rule_changes(&self, changes: &[RuleChange], fence: &Fence, now: i64) -> StoreResult<Option<(Vec<i64>, usize)>> {
                self.apply_rule_changes_impl(changes, now, Some(fence)).await
            }
            async fn try_lease(&self, name: &str, holder: &str, now: i64, ttl_ms: i64) -> StoreResult<bool> { self.try_lease_impl(name, holder, now, ttl_ms).await }
            async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> { self.release_lease_impl(name, holder).await }
            async fn lease(&self, name: &str) -> StoreResult<Option<Lease>> { self.lease_impl(name).await }
            async fn unevaluated_agent_samples(&self, floor: i64, limit: i64) -> StoreResult<Vec<Sample>> { self.unevaluated_agent_samples_impl(floor, limit).await }
            async fn list_channels(&self, scope: Scope) -> StoreResult<Vec<Channel>> { self.list_channels_impl(scope).await }
            async fn channel(&self, id: i64) -> StoreResult<Option<Channel>> { self.channel_impl(id).await }
            async fn create_channel(&self, owner_id: Option<i64>, input: &ChannelInput, secret: Option<&str>, now: i64) -> StoreResult<Channel> { self.create_channel_impl(owner_id, input, secret, now).await }
            async fn update_channel(&self, id: i64, input: &ChannelInput, now: i64) -> StoreResult<Option<Channel>> { self.update_channel_impl(id, input, now).await }
            async fn set_channel_secret(&self, id: i64, secret: &str, now: i64) -> StoreResult<bool> { self.set_channel_secret_impl(id, secret, now).await }
            async fn delete_channel(&self, id: i64) -> StoreResult<bool> { self.delete_channel_impl(id).await }
            async fn sync_env_channel(&self, kind: &str, channel: Option<&EnvChannel>, generated_secret: &str, now: i64) -> StoreResult<()> { self.sync_env_channel_impl(kind, channel, generated_secret, now).await }
            async fn claim_deliveries_skipping(&self, worker: &str, now: i64, lease_ms: i64, limit: i64, skip_channels: &[i64]) -> StoreResult<Vec<ClaimedDelivery>> { self.claim_deliveries_impl(worker, now, lease_ms, limit, skip_channels).await }
            async fn release_deliveries(&self, claims: &[(i64, String)]) -> StoreResult<usize> { self.release_deliveries_impl(claims).await }
            async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<usize> { self.record_attempts_impl(records).await }
            async fn enqueue_test(&self, channel_id: i64, payload: &serde_json::Value, message_id: &str, now: i64) -> StoreResult<i64> { self.enqueue_test_impl(channel_id, payload, message_id, now).await }
            async fn list_deliveries(&self, scope: Scope, filter: &DeliveryFilter, limit: i64, offset: i64) -> StoreResult<(Vec<Delivery>, i64)> { self.list_deliveries_impl(scope, filter, limit, offset).await }
            async fn delivery(&self, id: i64) -> StoreResult<Option<Delivery>> { self.delivery_impl(id).await }
            async fn delivery_attempts(&self, delivery_id: i64) -> StoreResult<Vec<DeliveryAttempt>> { self.delivery_attempts_impl(delivery_id).await }
            async fn retry_delivery(&self, id: i64, now: i64) -> StoreResult<bool> { self.retry_delivery_impl(id, now).await }
            async fn outbox_stats(&self) -> StoreResult<OutboxStats> { self.outbox_stats_impl().await }
            async fn recent_test_count(&self, owner: Option<i64>, since: i64) -> StoreResult<i64> { self.recent_test_count_impl(owner, since).await }
            async fn next_delivery_due(&self, skip_channels: &[i64]) -> StoreResult<Option<i64>> { self.next_delivery_due_impl(skip_channels).await }

            async fn insert_log_analysis(&self, a: &NewLogAnalysis) -> StoreResult<AnalysisInsert> {
                // Insert-or-read, twice at most: the analysis the key names may be deleted
                // between our refused insert and our read, and then the key is free again.
                for _ in 0..2 {
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO log_analyses (user_id, created_at, name, source, bytes, lines, errors, levels, report, idempotency_key, body_sha256) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
                    )
                    .bind(a.user_id)
                    .bind(a.created_at)
                    .bind(&a.name)
                    .bind(&a.source)
                    .bind(a.bytes)
                    .bind(a.lines)
                    .bind(a.errors)
                    .bind(&a.levels)
                    .bind(&a.report)
                    .bind(a.idempotency_key.as_deref())
                    .bind(a.body_sha256.as_deref())
                    .fetch_optional(self.w())
                    .await?;
                    if let Some(id) = id {
                        return Ok(AnalysisInsert::Stored(id));
                    }
                    // Only a key can conflict (rows without one never do). Read through the
                    // writer: the row that won was committed there, and a SQLite reader
                    // connection could still hold an older snapshot.
                    let existing = sqlx::query_as::<_, ExistingAnalysis>(
                        "SELECT id, report, body_sha256 FROM log_analyses WHERE user_id = $1 AND idempotency_key = $2",
                    )
                    .bind(a.user_id)
                    .bind(a.idempotency_key.as_deref())
                    .fetch_optional(self.w())
                    .await?;
                    if let Some(existing) = existing {
                        return Ok(AnalysisInsert::Existing(existing));
                    }
                }
                Err(StoreError::Unavailable("the idempotency key's analysis kept changing".into()))
            }

            async fn list_log_analyses(&self, user_id: i64, limit: i64, offset: i64) -> StoreResult<(Vec<LogAnalysisMeta>, i64)> {
                let rows = sqlx::query_as::<_, LogAnalysisMeta>(concat!(
                    "SELECT ", $crate::store::shared::analysis_columns!(),
                    " FROM log_analyses WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
                ))
                .bind(user_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(self.r())
                .await?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_analyses WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(self.r())
                    .await?;
                Ok((rows, total))
            }

            async fn log_analysis(&self, id: i64, user_id: i64) -> StoreResult<Option<LogAnalysis>> {
                Ok(sqlx::query_as::<_, LogAnalysis>(concat!(
                    "SELECT ", $crate::store::shared::analysis_columns!(),
                    ", report FROM log_analyses WHERE id = $1 AND user_id = $2"
                ))
                .bind(id)
                .bind(user_id)
                .fetch_optional(self.r())
                .await?)
            }

            async fn delete_log_analysis(&self, id: i64, user_id: i64) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM log_analyses WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(self.w())
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn prune_log_analyses(&self, user_id: i64, keep: i64) -> StoreResult<u64> {
                // Ids grow with time, so "beyond the newest `keep`" is below the id at that
                // rank; nothing to do while the user has no more than `keep`.
                let done = sqlx::query(
                    "DELETE FROM log_analyses WHERE user_id = $1 AND id < \
                     (SELECT id FROM log_analyses WHERE user_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                )
                .bind(user_id)
                .bind(keep - 1)
                .execute(self.w())
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(super) use impl_store;
pub(crate) use {alert_select, analysis_columns, host_columns, sample_columns, user_columns};
