//! Measuring helpers: percentiles, waiting for an idle CPU, the raw device limit (append +
//! fdatasync), peak RSS (`VmHWM`) and machine facts.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

/// The `p`-quantile (0..=1) of `values` (nearest rank; 0 for none).
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v.get(rank - 1).copied().unwrap_or(0.0)
}

/// The median of `values`.
pub(crate) fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

/// `(busy, total)` jiffies of all CPUs from `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle + iowait are not busy.
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Settles the machine before a measurement: writes back every file system's dirty data (`sync`,
/// so the previous workload's writes — other systems' data sets among them — are not flushed
/// by the kernel in the middle of this one), then [`wait_for_idle_cpu`].
pub(crate) fn settle(max: Duration) -> f64 {
    // `sync` is coreutils; without it the measurement only waits for an idle CPU.
    let _ = std::process::Command::new("sync").status();
    wait_for_idle_cpu(max)
}

/// Waits (at most `max`) until the CPUs were less than 25 % busy over a window of a quarter of
/// `max` (at most 200 ms). Returns the last busy fraction seen.
pub(crate) fn wait_for_idle_cpu(max: Duration) -> f64 {
    let window = (max / 4).min(Duration::from_millis(200));
    let start = Instant::now();
    let mut busy_frac = 0.0;
    while start.elapsed() < max {
        let Some((b0, t0)) = cpu_jiffies() else {
            return 0.0;
        };
        std::thread::sleep(window);
        let Some((b1, t1)) = cpu_jiffies() else {
            return 0.0;
        };
        #[allow(clippy::cast_precision_loss)]
        {
            busy_frac = (b1.saturating_sub(b0)) as f64 / (t1.saturating_sub(t0)).max(1) as f64;
        }
        if busy_frac < 0.25 {
            break;
        }
    }
    busy_frac
}

/// The raw device limit: `n` 100-byte appends, each followed by `fdatasync`, into a file
/// preallocated (zeros written and synced) beforehand — or, with `grow`, appended to an empty
/// file, so every fdatasync also commits the new file size. Returns each latency in ms.
pub(crate) fn raw_fdatasync(dir: &Path, n: usize, grow: bool) -> Result<Vec<f64>> {
    let path = dir.join("raw.log");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let record = [0x5au8; 100];
    let zeros = vec![0u8; 1 << 20];
    let mut written = 0;
    while !grow && written < n * 100 {
        f.write_all(&zeros)?;
        written += zeros.len();
    }
    f.sync_all()?;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&record, (i * 100) as u64)?;
        f.sync_data()?;
        lat.push(ms(t.elapsed()));
    }
    std::fs::remove_file(&path)?;
    Ok(lat)
}

/// A duration in milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`
/// (0 where it cannot be read).
pub(crate) fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces, so split after its ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux configuration that matters here.
    ticks / 100.0
}

/// This process's peak resident set size (`VmHWM`), in KiB.
pub(crate) fn vmhwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Facts about the machine for the report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Machine {
    /// Logical CPUs.
    pub(crate) cpus: usize,
    /// CPU model name.
    pub(crate) cpu_model: String,
    /// Total memory in GiB.
    pub(crate) mem_gib: f64,
    /// Kernel release.
    pub(crate) kernel: String,
    /// The temp dir the data lives in.
    pub(crate) temp_dir: String,
}

impl Machine {
    /// Reads the facts from /proc.
    pub(crate) fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|s| s.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_gib: mem_kib / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            temp_dir: std::env::temp_dir().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
