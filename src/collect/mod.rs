//! Host metrics sampling with sysinfo: one wide `Sample` per tick.
//!
//! Disk usage is the fullest real filesystem (percent), so one number answers "is any disk
//! filling up"; rates (disk and network bytes/s) are deltas since the previous tick.

use crate::store::Sample;
use std::time::Instant;
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, System};

/// Filesystems that are not storage a user can fill.
const PSEUDO_FS: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "squashfs",
    "overlayfs-lower",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "fusectl",
    "configfs",
    "ramfs",
    "autofs",
    "nsfs",
    "efivarfs",
    "iso9660",
];

/// How often the disk and interface lists are re-read (mounts and NICs change rarely).
const RELIST_EVERY: u32 = 60;

pub struct Collector {
    system: System,
    disks: Disks,
    networks: Networks,
    last: Instant,
    ticks: u32,
}

impl Collector {
    pub fn new() -> anyhow::Result<Self> {
        let mut system =
            System::new().map_err(|e| anyhow::anyhow!("sysinfo unavailable: {e:?}"))?;
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        system.refresh_memory_specifics(MemoryRefreshKind::everything());
        let disks = Disks::new_with_refreshed_list_specifics(Self::disk_kind())
            .map_err(|e| anyhow::anyhow!("sysinfo disks unavailable: {e:?}"))?;
        let networks = Networks::new_with_refreshed_list()
            .map_err(|e| anyhow::anyhow!("sysinfo networks unavailable: {e:?}"))?;
        Ok(Self {
            system,
            disks,
            networks,
            last: Instant::now(),
            ticks: 0,
        })
    }

    fn disk_kind() -> DiskRefreshKind {
        DiskRefreshKind::nothing().with_storage().with_io_usage()
    }

    /// Takes one sample stamped `ts` (UTC epoch ms) for `host_id`.
    pub fn sample(&mut self, host_id: i64, ts: i64) -> Sample {
        let elapsed = self.last.elapsed().as_secs_f64().max(0.001);
        self.last = Instant::now();
        self.ticks = self.ticks.wrapping_add(1);

        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::everything());
        if self.ticks.is_multiple_of(RELIST_EVERY) {
            if let Ok(d) = Disks::new_with_refreshed_list_specifics(Self::disk_kind()) {
                self.disks = d;
            }
            self.networks.refresh(true);
        } else {
            self.disks.refresh_specifics(false, Self::disk_kind());
            self.networks.refresh(false);
        }

        let total = self.system.total_memory();
        let available = self.system.available_memory();
        let used = total.saturating_sub(available);
        let swap_total = self.system.total_swap();
        let load = System::load_average().unwrap_or(sysinfo::LoadAvg {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
        });

        let mut disk_pct: f64 = 0.0;
        let mut read = 0u64;
        let mut written = 0u64;
        let mut seen_devices: Vec<&std::ffi::OsStr> = Vec::new();
        for d in self.disks.iter() {
            let fs = d.file_system().to_string_lossy();
            if PSEUDO_FS.iter().any(|p| fs == *p) || d.total_space() == 0 {
                continue;
            }
            let pct = 100.0 * (d.total_space() - d.available_space().min(d.total_space())) as f64
                / d.total_space() as f64;
            disk_pct = disk_pct.max(pct);
            // A device mounted at several points must count its I/O once.
            if !seen_devices.contains(&d.name()) {
                seen_devices.push(d.name());
                let u = d.usage();
                read = read.saturating_add(u.read_bytes);
                written = written.saturating_add(u.written_bytes);
            }
        }
        let (mut rx, mut tx) = (0u64, 0u64);
        for (name, data) in self.networks.iter() {
            if name == "lo" {
                continue;
            }
            rx = rx.saturating_add(data.received());
            tx = tx.saturating_add(data.transmitted());
        }

        Sample {
            host_id,
            ts,
            cpu: round2(f64::from(self.system.global_cpu_usage())),
            memory: round2(pct(used, total)),
            memory_used: i64::try_from(used).unwrap_or(i64::MAX),
            memory_total: i64::try_from(total).unwrap_or(i64::MAX),
            swap: round2(pct(self.system.used_swap(), swap_total)),
            load1: load.one,
            load5: load.five,
            load15: load.fifteen,
            disk: round2(disk_pct),
            disk_read_bps: (read as f64 / elapsed).round(),
            disk_write_bps: (written as f64 / elapsed).round(),
            net_rx_bps: (rx as f64 / elapsed).round(),
            net_tx_bps: (tx as f64 / elapsed).round(),
            processes: process_count(),
            uptime: i64::try_from(System::uptime().unwrap_or(0)).unwrap_or(0),
        }
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Counts processes from `/proc` directly: far cheaper than refreshing sysinfo's process
/// table (which reads several files per process) every second.
fn process_count() -> i64 {
    match std::fs::read_dir("/proc") {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .as_encoded_bytes()
                    .iter()
                    .all(u8::is_ascii_digit)
            })
            .count() as i64,
        Err(_) => 0,
    }
}

/// The name this host is registered under.
pub fn local_hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_plausible() {
        let mut c = Collector::new().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        let s = c.sample(1, 123);
        assert_eq!(s.ts, 123);
        assert!((0.0..=100.0).contains(&s.cpu), "{}", s.cpu);
        assert!(s.memory > 0.0 && s.memory <= 100.0, "{}", s.memory);
        assert!(s.memory_total > 0 && s.memory_used <= s.memory_total);
        assert!((0.0..=100.0).contains(&s.disk));
        assert!(s.processes > 1);
        assert!(s.uptime > 0);
        assert!(s.net_rx_bps >= 0.0 && s.disk_read_bps >= 0.0);
    }
}
