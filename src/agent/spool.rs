//! The agent's spool file: unsent samples as JSON lines, written atomically at shutdown and
//! read back at the next start.

use crate::ingest::wire::WireSample;
use crate::store::Sample;
use anyhow::Context;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Writes `samples` (oldest first) to `path` as JSON lines: into a temporary file beside
/// it, synced, then renamed over `path`, and the directory synced — so a crash or power
/// cut leaves either the old spool or the new one, never half of one. An empty list
/// removes the spool.
pub fn save(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    if samples.is_empty() {
        return remove(path);
    }
    let tmp = temp_path(path);
    let result = (|| -> anyhow::Result<()> {
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = std::io::BufWriter::new(file);
        for s in samples {
            serde_json::to_writer(&mut w, &WireSample::from_sample(s))?;
            w.write_all(b"\n")?;
        }
        let file = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing {}: {}", tmp.display(), e.error()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        sync_dir(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads a spool written by [`save`]; a missing file is an empty spool. Lines that do not
/// parse (a hand-edited or foreign file) are skipped and counted rather than failing the
/// start: the rest are still worth sending.
pub fn load(path: &Path) -> anyhow::Result<(Vec<Sample>, usize)> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut samples = Vec::new();
    let mut bad = 0usize;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<WireSample>(&line)
            .ok()
            .and_then(|w| w.to_sample(0).ok())
        {
            Some(s) => samples.push(s),
            None => bad += 1,
        }
    }
    Ok((samples, bad))
}

/// Removes the spool (after its samples were loaded into memory, so a later crash does not
/// replay them a second time).
pub fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Fails if the spool could not be written at shutdown (missing directory, no
/// permission), so a misconfiguration shows at start rather than when data is at stake.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let tmp = temp_path(path);
    std::fs::File::create(&tmp).with_context(|| {
        format!(
            "cannot write the spool file's directory ({})",
            tmp.display()
        )
    })?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Makes a rename or removal durable; best effort (not every filesystem allows it).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts: i64) -> Sample {
        Sample {
            ts,
            cpu: 1.5,
            memory: 50.25,
            memory_used: 1 << 30,
            memory_total: 2 << 30,
            swap: 0.0,
            load1: 0.75,
            load5: 0.5,
            load15: 0.25,
            disk: 61.5,
            disk_read_bps: 1024.0,
            disk_write_bps: 2048.0,
            net_rx_bps: 300.0,
            net_tx_bps: 400.0,
            processes: 321,
            uptime: 86_400,
            host_id: 0,
        }
    }

    #[test]
    fn round_trip_keeps_every_sample_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.spool");
        let samples: Vec<Sample> = (0..500).map(|i| sample(1_790_000_000_000 + i)).collect();
        save(&path, &samples).unwrap();
        assert!(!temp_path(&path).exists(), "temporary file left behind");
        let (loaded, bad) = load(&path).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(loaded, samples);
        // Saving again replaces, not appends.
        save(&path, &samples[..2]).unwrap();
        assert_eq!(load(&path).unwrap().0, samples[..2].to_vec());
        // Nothing to save removes the spool.
        save(&path, &[]).unwrap();
        assert!(!path.exists());
        assert_eq!(load(&path).unwrap(), (Vec::new(), 0));
    }

    #[test]
    fn bad_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.spool");
        save(&path, &[sample(1_000), sample(2_000)]).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not json\n\n{\"ts\":\"x\"}\n");
        text.push_str(&serde_json::to_string(&WireSample::from_sample(&sample(3_000))).unwrap());
        std::fs::write(&path, text).unwrap();
        let (loaded, bad) = load(&path).unwrap();
        assert_eq!(bad, 2);
        assert_eq!(
            loaded.iter().map(|s| s.ts).collect::<Vec<_>>(),
            vec![1_000, 2_000, 3_000]
        );
        remove(&path).unwrap();
        remove(&path).unwrap();
    }

    #[test]
    fn an_unwritable_spool_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("agent.spool");
        assert!(check_writable(&path).is_err());
        assert!(save(&path, &[sample(1)]).is_err());
        let fine = dir.path().join("agent.spool");
        check_writable(&fine).unwrap();
        assert!(!temp_path(&fine).exists() && !fine.exists());
    }
}
