//! The command-line layer (highest precedence): `--host`, `--port`, `--path`,
//! `--hostname`, `--cores`, `--debug`, `--pid-file`. Only flags that were given override
//! anything.

use super::draft::Draft;
use super::forms;
use super::{ConfigError, Cores, Flags};

/// Applies the given flags; returns their names for the list of sources.
pub(super) fn apply(flags: &Flags, d: &mut Draft) -> Result<Vec<&'static str>, ConfigError> {
    let mut given = Vec::new();
    let s = &mut d.server;
    if let Some(host) = &flags.host {
        if host.trim().is_empty() {
            return Err(ConfigError::new(
                "--host \"\": expected a bind address such as 0.0.0.0 or 127.0.0.1",
            ));
        }
        s.host = host.clone();
        given.push("--host");
    }
    if let Some(port) = flags.port {
        s.port = port;
        given.push("--port");
    }
    if let Some(path) = &flags.path {
        s.path = forms::parse_path(path).ok_or_else(|| {
            ConfigError::new(format!("--path {path:?}: expected {}", forms::PATH))
        })?;
        given.push("--path");
    }
    if let Some(hostname) = &flags.hostname {
        s.hostname = Some(hostname.clone()).filter(|h| !h.is_empty());
        given.push("--hostname");
    }
    if let Some(cores) = flags.cores {
        if cores == Cores::Count(0) {
            return Err(ConfigError::new(format!(
                "--cores 0: expected {}",
                forms::CORES
            )));
        }
        s.cores = cores;
        given.push("--cores");
    }
    if flags.debug {
        s.debug = true;
        given.push("--debug");
    }
    if let Some(path) = &flags.pid_file {
        if path.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "--pid-file \"\": expected a file path such as /run/reverb-shard.pid",
            ));
        }
        // Resolved against the working directory with the other paths (validate.rs).
        s.pid_file = Some(path.clone());
        given.push("--pid-file");
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_flags_override() {
        let mut d = Draft::default();
        d.server.port = 9000;
        d.server.debug = true;
        let given = apply(&Flags::default(), &mut d).unwrap();
        assert!(given.is_empty());
        assert_eq!(d.server.port, 9000);
        assert!(d.server.debug, "--debug absent must not switch debug off");
    }

    #[test]
    fn flags_normalise_and_validate() {
        let mut d = Draft::default();
        let flags = Flags {
            path: Some("ws/".into()),
            cores: Some(Cores::Count(2)),
            hostname: Some("h.test".into()),
            ..Flags::default()
        };
        assert_eq!(
            apply(&flags, &mut d).unwrap(),
            vec!["--path", "--hostname", "--cores"]
        );
        assert_eq!(d.server.path, "/ws");
        assert_eq!(d.server.cores, Cores::Count(2));
        let bad = Flags {
            path: Some("/a?b".into()),
            ..Flags::default()
        };
        let e = apply(&bad, &mut d).unwrap_err().to_string();
        assert!(
            e.starts_with("--path \"/a?b\": expected a URL path prefix"),
            "{e}"
        );
        let bad = Flags {
            cores: Some(Cores::Count(0)),
            ..Flags::default()
        };
        assert!(apply(&bad, &mut d)
            .unwrap_err()
            .to_string()
            .starts_with("--cores 0"));
    }

    #[test]
    fn pid_file_flag_overrides_the_configured_one() {
        let mut d = Draft::default();
        d.server.pid_file = Some("/from/config.pid".into());
        let flags = Flags {
            pid_file: Some("run/rs.pid".into()),
            ..Flags::default()
        };
        assert_eq!(apply(&flags, &mut d).unwrap(), vec!["--pid-file"]);
        assert_eq!(d.server.pid_file, Some("run/rs.pid".into()));
        let empty = Flags {
            pid_file: Some("".into()),
            ..Flags::default()
        };
        assert!(apply(&empty, &mut d)
            .unwrap_err()
            .to_string()
            .starts_with("--pid-file"));
    }
}
