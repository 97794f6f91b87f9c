//! The server's resource use, read from /proc for `--server-pid`: resident memory
//! (VmRSS in /proc/PID/status) and CPU time (utime + stime in /proc/PID/stat), summed
//! over every pid given.

use std::fs;

/// One reading of the server processes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub rss_kib: u64,
    /// User + system CPU time, in seconds.
    pub cpu_s: f64,
}

/// Whether a process with this id exists.
pub fn exists(pid: u32) -> bool {
    fs::metadata(format!("/proc/{pid}/stat")).is_ok()
}

/// Read every pid and sum; `None` when one of them cannot be read (it exited).
pub fn sample(pids: &[u32]) -> Option<Sample> {
    if pids.is_empty() {
        return None;
    }
    let ticks = clock_ticks();
    let mut total = Sample::default();
    for &pid in pids {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        total.rss_kib += rss_kib(&status)?;
        total.cpu_s += cpu_ticks(&stat)? as f64 / ticks;
    }
    Some(total)
}

/// VmRSS from /proc/PID/status, in KiB.
fn rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// utime + stime (fields 14 and 15) from /proc/PID/stat, in clock ticks. The command
/// name (field 2) is in parentheses and may hold spaces, so fields are counted from
/// the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat =
            "1234 (reverb shard) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        let status = "Name:\treverb-shard\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(rss_kib(status), Some(12345));
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(exists(me));
        let s = sample(&[me]).unwrap();
        assert!(s.rss_kib > 0);
        assert!(s.cpu_s >= 0.0);
        assert_eq!(sample(&[]), None);
    }
}
