//! The pid file (operations.md §3): `start` writes its process id there once it
//! serves, `restart` reads it to know whom to send SIGHUP, and a process removes it on
//! exit only while it still names that process (after a hand-over it names the
//! successor, which must stay findable).

use std::io;
use std::path::{Path, PathBuf};

/// Where the pid file goes: `[server] pid_file` / `--pid-file` when given, else
/// `reverb-shard-{port}.pid` in `$XDG_RUNTIME_DIR`, else in the system temp dir.
///
/// `None` for port 0 without a configured file: the system picks the port, so a
/// name with the port in it could never be found by `restart`, and every such server
/// (tests run hundreds) would fight over `reverb-shard-0.pid`.
pub fn resolve(configured: Option<&Path>, port: u16) -> Option<PathBuf> {
    match configured {
        Some(path) => Some(path.to_path_buf()),
        None if port == 0 => None,
        None => Some(default_path(port)),
    }
}

/// `reverb-shard-{port}.pid` in `$XDG_RUNTIME_DIR` (per-user, cleaned at logout and
/// reboot) when that is set to an absolute path, else in the system temp dir.
pub fn default_path(port: u16) -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("reverb-shard-{port}.pid"))
}

/// Write `pid` and a newline, atomically: a `restart` running at the same moment reads
/// either the old content or the new, never a half-written number.
pub fn write(path: &Path, pid: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut temp_name = name.to_os_string();
    temp_name.push(format!(".{pid}.tmp"));
    let temp = path.with_file_name(temp_name);
    std::fs::write(&temp, format!("{pid}\n"))?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// Why a pid file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Missing,
    Unreadable(io::Error),
    /// It exists but does not hold a process id (the text found).
    Garbled(String),
}

/// The pid a pid file names.
pub fn read(path: &Path) -> Result<u32, ReadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Unreadable(e)),
    };
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 && pid <= i32::MAX as u32 => Ok(pid),
        _ => Err(ReadError::Garbled(text.chars().take(40).collect())),
    }
}

/// Remove the file if it still names `pid`; true if it was removed.
pub fn remove_if_ours(path: &Path, pid: u32) -> bool {
    match read(path) {
        Ok(found) if found == pid => std::fs::remove_file(path).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_has_no_default_file() {
        assert_eq!(resolve(None, 0), None);
        let explicit = Path::new("/run/x.pid");
        assert_eq!(resolve(Some(explicit), 0).as_deref(), Some(explicit));
        let default = resolve(None, 8080).unwrap();
        assert!(default.ends_with("reverb-shard-8080.pid"), "{default:?}");
    }

    #[test]
    fn written_files_are_read_back_and_removed_only_by_their_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rs.pid");
        assert!(matches!(read(&path), Err(ReadError::Missing)));
        write(&path, 1234).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1234\n");
        assert_eq!(read(&path).unwrap(), 1234);
        // A successor rewrote it: the predecessor must leave it alone.
        write(&path, 5678).unwrap();
        assert!(!remove_if_ours(&path, 1234));
        assert!(remove_if_ours(&path, 5678));
        assert!(!path.exists());
        std::fs::write(&path, "not a pid").unwrap();
        assert!(matches!(read(&path), Err(ReadError::Garbled(t)) if t == "not a pid"));
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
