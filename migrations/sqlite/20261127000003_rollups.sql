-- Rollups: per host, per minute and per hour, min/max/sum of the charted metrics and the
-- sample count, maintained with every insert so long-range charts read a few hundred rows
-- instead of millions. Existing samples are folded in once, here.
CREATE TABLE samples_1m (
    host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    bucket  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    cpu_min REAL NOT NULL,
    cpu_max REAL NOT NULL,
    cpu_sum REAL NOT NULL,
    memory_min REAL NOT NULL,
    memory_max REAL NOT NULL,
    memory_sum REAL NOT NULL,
    swap_min REAL NOT NULL,
    swap_max REAL NOT NULL,
    swap_sum REAL NOT NULL,
    disk_min REAL NOT NULL,
    disk_max REAL NOT NULL,
    disk_sum REAL NOT NULL,
    load1_min REAL NOT NULL,
    load1_max REAL NOT NULL,
    load1_sum REAL NOT NULL,
    net_rx_min REAL NOT NULL,
    net_rx_max REAL NOT NULL,
    net_rx_sum REAL NOT NULL,
    net_tx_min REAL NOT NULL,
    net_tx_max REAL NOT NULL,
    net_tx_sum REAL NOT NULL,
    PRIMARY KEY (host_id, bucket)
) WITHOUT ROWID;
INSERT INTO samples_1m SELECT host_id, ts / 60000 * 60000, COUNT(*), MIN(cpu), MAX(cpu), SUM(cpu), MIN(memory), MAX(memory), SUM(memory), MIN(swap), MAX(swap), SUM(swap), MIN(disk), MAX(disk), SUM(disk), MIN(load1), MAX(load1), SUM(load1), MIN(net_rx_bps), MAX(net_rx_bps), SUM(net_rx_bps), MIN(net_tx_bps), MAX(net_tx_bps), SUM(net_tx_bps)
FROM samples GROUP BY host_id, ts / 60000 * 60000;

CREATE TABLE samples_1h (
    host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    bucket  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    cpu_min REAL NOT NULL,
    cpu_max REAL NOT NULL,
    cpu_sum REAL NOT NULL,
    memory_min REAL NOT NULL,
    memory_max REAL NOT NULL,
    memory_sum REAL NOT NULL,
    swap_min REAL NOT NULL,
    swap_max REAL NOT NULL,
    swap_sum REAL NOT NULL,
    disk_min REAL NOT NULL,
    disk_max REAL NOT NULL,
    disk_sum REAL NOT NULL,
    load1_min REAL NOT NULL,
    load1_max REAL NOT NULL,
    load1_sum REAL NOT NULL,
    net_rx_min REAL NOT NULL,
    net_rx_max REAL NOT NULL,
    net_rx_sum REAL NOT NULL,
    net_tx_min REAL NOT NULL,
    net_tx_max REAL NOT NULL,
    net_tx_sum REAL NOT NULL,
    PRIMARY KEY (host_id, bucket)
) WITHOUT ROWID;
INSERT INTO samples_1h SELECT host_id, ts / 3600000 * 3600000, COUNT(*), MIN(cpu), MAX(cpu), SUM(cpu), MIN(memory), MAX(memory), SUM(memory), MIN(swap), MAX(swap), SUM(swap), MIN(disk), MAX(disk), SUM(disk), MIN(load1), MAX(load1), SUM(load1), MIN(net_rx_bps), MAX(net_rx_bps), SUM(net_rx_bps), MIN(net_tx_bps), MAX(net_tx_bps), SUM(net_tx_bps)
FROM samples GROUP BY host_id, ts / 3600000 * 3600000;
