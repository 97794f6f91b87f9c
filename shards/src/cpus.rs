//! Which CPUs this process may run on.
//!
//! `--cores auto` must respect `taskset`, cgroup cpusets and container limits, so the
//! answer comes from the kernel's affinity mask for this process rather than from the
//! number of CPUs the machine has.

use std::io;

/// The CPU ids in this process's affinity mask, in ascending order.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain data; zeroed is a valid empty set, and
    // sched_getaffinity writes at most `size_of::<cpu_set_t>()` bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    if cpus.is_empty() {
        return Err(io::Error::other(
            "the affinity mask of this process is empty",
        ));
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_not_empty_and_sorted() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_mask_agrees_with_std() {
        // std's available_parallelism also reads the affinity mask (and cgroup quotas,
        // which can only make it smaller).
        let std_count = std::thread::available_parallelism().unwrap().get();
        assert!(allowed_cpus().unwrap().len() >= std_count);
    }
}
