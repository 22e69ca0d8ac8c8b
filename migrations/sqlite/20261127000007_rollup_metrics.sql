-- Rollups for every sample metric, so that a rollup row can stand in for the raw samples of
-- its bucket in /metrics/history (averages from sums, maxima for processes and uptime): the
-- remaining gauges get min/max/sum, uptime (which only grows) its maximum. The column list
-- matches `METRICS` in src/store/rollup.rs, from which the statements are generated.
--
-- Existing buckets are recomputed from the raw samples they summarise. Until now raw rows
-- were never deleted, so every bucket still has them; a bucket without any (rows removed
-- by hand) keeps zeros. REAL like the existing columns: f64 holds integers exactly up to
-- 2^53.
--
-- Retention needs no new index: it deletes old rows host by host along the (host_id, ts)
-- and (host_id, bucket) primary keys, and an index on time alone would cost every insert.

ALTER TABLE samples_1m ADD COLUMN memory_used_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN memory_used_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN memory_used_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN memory_total_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN memory_total_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN memory_total_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN load5_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN load5_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN load5_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN load15_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN load15_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN load15_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN disk_read_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN disk_read_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN disk_read_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN disk_write_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN disk_write_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN disk_write_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN processes_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN processes_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN processes_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1m ADD COLUMN uptime_max REAL NOT NULL DEFAULT 0;
UPDATE samples_1m SET
    memory_used_min = r.memory_used_min,
    memory_used_max = r.memory_used_max,
    memory_used_sum = r.memory_used_sum,
    memory_total_min = r.memory_total_min,
    memory_total_max = r.memory_total_max,
    memory_total_sum = r.memory_total_sum,
    load5_min = r.load5_min,
    load5_max = r.load5_max,
    load5_sum = r.load5_sum,
    load15_min = r.load15_min,
    load15_max = r.load15_max,
    load15_sum = r.load15_sum,
    disk_read_min = r.disk_read_min,
    disk_read_max = r.disk_read_max,
    disk_read_sum = r.disk_read_sum,
    disk_write_min = r.disk_write_min,
    disk_write_max = r.disk_write_max,
    disk_write_sum = r.disk_write_sum,
    processes_min = r.processes_min,
    processes_max = r.processes_max,
    processes_sum = r.processes_sum,
    uptime_max = r.uptime_max
FROM (SELECT host_id, ts / 60000 * 60000 AS bucket,
           MIN(memory_used) AS memory_used_min,
           MAX(memory_used) AS memory_used_max,
           SUM(memory_used) AS memory_used_sum,
           MIN(memory_total) AS memory_total_min,
           MAX(memory_total) AS memory_total_max,
           SUM(memory_total) AS memory_total_sum,
           MIN(load5) AS load5_min,
           MAX(load5) AS load5_max,
           SUM(load5) AS load5_sum,
           MIN(load15) AS load15_min,
           MAX(load15) AS load15_max,
           SUM(load15) AS load15_sum,
           MIN(disk_read_bps) AS disk_read_min,
           MAX(disk_read_bps) AS disk_read_max,
           SUM(disk_read_bps) AS disk_read_sum,
           MIN(disk_write_bps) AS disk_write_min,
           MAX(disk_write_bps) AS disk_write_max,
           SUM(disk_write_bps) AS disk_write_sum,
           MIN(processes) AS processes_min,
           MAX(processes) AS processes_max,
           SUM(processes) AS processes_sum,
           MAX(uptime) AS uptime_max
      FROM samples GROUP BY host_id, ts / 60000 * 60000) AS r
WHERE samples_1m.host_id = r.host_id AND samples_1m.bucket = r.bucket;

ALTER TABLE samples_1h ADD COLUMN memory_used_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN memory_used_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN memory_used_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN memory_total_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN memory_total_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN memory_total_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN load5_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN load5_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN load5_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN load15_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN load15_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN load15_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN disk_read_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN disk_read_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN disk_read_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN disk_write_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN disk_write_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN disk_write_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN processes_min REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN processes_max REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN processes_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE samples_1h ADD COLUMN uptime_max REAL NOT NULL DEFAULT 0;
UPDATE samples_1h SET
    memory_used_min = r.memory_used_min,
    memory_used_max = r.memory_used_max,
    memory_used_sum = r.memory_used_sum,
    memory_total_min = r.memory_total_min,
    memory_total_max = r.memory_total_max,
    memory_total_sum = r.memory_total_sum,
    load5_min = r.load5_min,
    load5_max = r.load5_max,
    load5_sum = r.load5_sum,
    load15_min = r.load15_min,
    load15_max = r.load15_max,
    load15_sum = r.load15_sum,
    disk_read_min = r.disk_read_min,
    disk_read_max = r.disk_read_max,
    disk_read_sum = r.disk_read_sum,
    disk_write_min = r.disk_write_min,
    disk_write_max = r.disk_write_max,
    disk_write_sum = r.disk_write_sum,
    processes_min = r.processes_min,
    processes_max = r.processes_max,
    processes_sum = r.processes_sum,
    uptime_max = r.uptime_max
FROM (SELECT host_id, ts / 3600000 * 3600000 AS bucket,
           MIN(memory_used) AS memory_used_min,
           MAX(memory_used) AS memory_used_max,
           SUM(memory_used) AS memory_used_sum,
           MIN(memory_total) AS memory_total_min,
           MAX(memory_total) AS memory_total_max,
           SUM(memory_total) AS memory_total_sum,
           MIN(load5) AS load5_min,
           MAX(load5) AS load5_max,
           SUM(load5) AS load5_sum,
           MIN(load15) AS load15_min,
           MAX(load15) AS load15_max,
           SUM(load15) AS load15_sum,
           MIN(disk_read_bps) AS disk_read_min,
           MAX(disk_read_bps) AS disk_read_max,
           SUM(disk_read_bps) AS disk_read_sum,
           MIN(disk_write_bps) AS disk_write_min,
           MAX(disk_write_bps) AS disk_write_max,
           SUM(disk_write_bps) AS disk_write_sum,
           MIN(processes) AS processes_min,
           MAX(processes) AS processes_max,
           SUM(processes) AS processes_sum,
           MAX(uptime) AS uptime_max
      FROM samples GROUP BY host_id, ts / 3600000 * 3600000) AS r
WHERE samples_1h.host_id = r.host_id AND samples_1h.bucket = r.bucket;
