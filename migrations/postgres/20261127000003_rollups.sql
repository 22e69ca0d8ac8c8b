-- Rollups: per host, per minute and per hour, min/max/sum of the charted metrics and the
-- sample count, maintained with every insert so long-range charts read a few hundred rows
-- instead of millions. Existing samples are folded in once, here.
CREATE TABLE samples_1m (
    host_id BIGINT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    bucket  BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    cpu_min DOUBLE PRECISION NOT NULL,
    cpu_max DOUBLE PRECISION NOT NULL,
    cpu_sum DOUBLE PRECISION NOT NULL,
    memory_min DOUBLE PRECISION NOT NULL,
    memory_max DOUBLE PRECISION NOT NULL,
    memory_sum DOUBLE PRECISION NOT NULL,
    swap_min DOUBLE PRECISION NOT NULL,
    swap_max DOUBLE PRECISION NOT NULL,
    swap_sum DOUBLE PRECISION NOT NULL,
    disk_min DOUBLE PRECISION NOT NULL,
    disk_max DOUBLE PRECISION NOT NULL,
    disk_sum DOUBLE PRECISION NOT NULL,
    load1_min DOUBLE PRECISION NOT NULL,
    load1_max DOUBLE PRECISION NOT NULL,
    load1_sum DOUBLE PRECISION NOT NULL,
    net_rx_min DOUBLE PRECISION NOT NULL,
    net_rx_max DOUBLE PRECISION NOT NULL,
    net_rx_sum DOUBLE PRECISION NOT NULL,
    net_tx_min DOUBLE PRECISION NOT NULL,
    net_tx_max DOUBLE PRECISION NOT NULL,
    net_tx_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (host_id, bucket)
);
INSERT INTO samples_1m SELECT host_id, ts / 60000 * 60000, COUNT(*), MIN(cpu), MAX(cpu), SUM(cpu), MIN(memory), MAX(memory), SUM(memory), MIN(swap), MAX(swap), SUM(swap), MIN(disk), MAX(disk), SUM(disk), MIN(load1), MAX(load1), SUM(load1), MIN(net_rx_bps), MAX(net_rx_bps), SUM(net_rx_bps), MIN(net_tx_bps), MAX(net_tx_bps), SUM(net_tx_bps)
FROM samples GROUP BY host_id, ts / 60000 * 60000;

CREATE TABLE samples_1h (
    host_id BIGINT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    bucket  BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    cpu_min DOUBLE PRECISION NOT NULL,
    cpu_max DOUBLE PRECISION NOT NULL,
    cpu_sum DOUBLE PRECISION NOT NULL,
    memory_min DOUBLE PRECISION NOT NULL,
    memory_max DOUBLE PRECISION NOT NULL,
    memory_sum DOUBLE PRECISION NOT NULL,
    swap_min DOUBLE PRECISION NOT NULL,
    swap_max DOUBLE PRECISION NOT NULL,
    swap_sum DOUBLE PRECISION NOT NULL,
    disk_min DOUBLE PRECISION NOT NULL,
    disk_max DOUBLE PRECISION NOT NULL,
    disk_sum DOUBLE PRECISION NOT NULL,
    load1_min DOUBLE PRECISION NOT NULL,
    load1_max DOUBLE PRECISION NOT NULL,
    load1_sum DOUBLE PRECISION NOT NULL,
    net_rx_min DOUBLE PRECISION NOT NULL,
    net_rx_max DOUBLE PRECISION NOT NULL,
    net_rx_sum DOUBLE PRECISION NOT NULL,
    net_tx_min DOUBLE PRECISION NOT NULL,
    net_tx_max DOUBLE PRECISION NOT NULL,
    net_tx_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (host_id, bucket)
);
INSERT INTO samples_1h SELECT host_id, ts / 3600000 * 3600000, COUNT(*), MIN(cpu), MAX(cpu), SUM(cpu), MIN(memory), MAX(memory), SUM(memory), MIN(swap), MAX(swap), SUM(swap), MIN(disk), MAX(disk), SUM(disk), MIN(load1), MAX(load1), SUM(load1), MIN(net_rx_bps), MAX(net_rx_bps), SUM(net_rx_bps), MIN(net_tx_bps), MAX(net_tx_bps), SUM(net_tx_bps)
FROM samples GROUP BY host_id, ts / 3600000 * 3600000;
