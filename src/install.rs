//! `reverb-shard install` (operations.md §4): credentials for a new app and the lines
//! a Laravel app needs, printed, or written into its `.env` and our `config.toml`.
//!
//! Idempotent: a variable already in the `.env` is never rewritten (unless `--force`),
//! and credentials already there are the ones reused for the `[[apps]]` entry.

use std::fmt::Write as _;
use std::path::Path;

/// The credentials of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

impl Credentials {
    /// Fresh credentials in Reverb's shapes: id 100000..999999, key and secret of 20
    /// characters [a-z0-9], from the OS CSPRNG.
    pub fn generate() -> Credentials {
        let mut bytes = [0u8; 44];
        getrandom::getrandom(&mut bytes).expect("the OS random source failed");
        let id = 100_000 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) % 900_000;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        // 256 % 36 != 0: the slight bias is irrelevant for 20-character secrets.
        let word = |b: &[u8]| {
            b.iter()
                .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
                .collect::<String>()
        };
        Credentials {
            app_id: id.to_string(),
            key: word(&bytes[4..24]),
            secret: word(&bytes[24..44]),
        }
    }
}

/// The `REVERB_*` block Reverb's installer writes, in its order.
pub fn env_lines(c: &Credentials) -> Vec<(&'static str, String)> {
    vec![
        ("REVERB_APP_ID", c.app_id.clone()),
        ("REVERB_APP_KEY", c.key.clone()),
        ("REVERB_APP_SECRET", c.secret.clone()),
        ("REVERB_HOST", "\"localhost\"".into()),
        ("REVERB_PORT", "8080".into()),
        ("REVERB_SCHEME", "http".into()),
        ("VITE_REVERB_APP_KEY", "\"${REVERB_APP_KEY}\"".into()),
        ("VITE_REVERB_HOST", "\"${REVERB_HOST}\"".into()),
        ("VITE_REVERB_PORT", "\"${REVERB_PORT}\"".into()),
        ("VITE_REVERB_SCHEME", "\"${REVERB_SCHEME}\"".into()),
    ]
}

/// The `[[apps]]` TOML entry for these credentials.
pub fn toml_app(c: &Credentials) -> String {
    format!(
        "[[apps]]\napp_id = \"{}\"\nkey = \"{}\"\nsecret = \"{}\"\nallowed_origins = [\"*\"]\n",
        c.app_id, c.key, c.secret
    )
}

/// The value of `name` in a `.env` text (first line that defines it), unquoted.
pub fn env_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let value = line.strip_prefix(name)?.trim_start().strip_prefix('=')?;
        let value = value.split(" #").next().unwrap_or("").trim();
        Some(value.trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

fn defines(line: &str, name: &str) -> bool {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line);
    line.strip_prefix(name)
        .is_some_and(|rest| rest.trim_start().starts_with('='))
}

/// The outcome of updating a `.env` text: the new text and one line per change.
pub struct EnvUpdate {
    pub text: String,
    pub changes: Vec<String>,
}

/// Add what is missing (or, with `force`, replace the REVERB_* values) and make the
/// broadcasting connection `reverb`.
pub fn update_env(text: &str, c: &Credentials, force: bool) -> EnvUpdate {
    let wanted = env_lines(c);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut changes = Vec::new();

    // BROADCAST_CONNECTION=reverb: rewrite a BROADCAST_CONNECTION / BROADCAST_DRIVER line.
    let mut broadcast_found = false;
    for line in lines.iter_mut() {
        for name in ["BROADCAST_CONNECTION", "BROADCAST_DRIVER"] {
            if defines(line, name) {
                broadcast_found = true;
                let new = format!("{name}=reverb");
                if *line != new {
                    changes.push(format!("set {name}=reverb (was `{}`)", line.trim()));
                    *line = new;
                }
            }
        }
    }
    if !broadcast_found {
        lines.push("BROADCAST_CONNECTION=reverb".into());
        changes.push("added BROADCAST_CONNECTION=reverb".into());
    }

    let mut missing = Vec::new();
    for (name, value) in &wanted {
        match lines.iter().position(|l| defines(l, name)) {
            Some(i) if force && name.starts_with("REVERB_") => {
                let new = format!("{name}={value}");
                if lines[i] != new {
                    changes.push(format!("replaced {name}"));
                    lines[i] = new;
                }
            }
            Some(_) => {}
            None => missing.push(format!("{name}={value}")),
        }
    }
    if !missing.is_empty() {
        changes.extend(
            missing
                .iter()
                .map(|l| format!("added {}", l.split('=').next().unwrap_or(""))),
        );
        if lines.last().is_some_and(|l| !l.trim().is_empty()) {
            lines.push(String::new());
        }
        // Reverb's layout: the server block, a blank line, then the VITE_ block.
        let mut after_reverb = false;
        for line in &missing {
            if line.starts_with("VITE_") && after_reverb {
                lines.push(String::new());
            }
            after_reverb = line.starts_with("REVERB_");
            lines.push(line.clone());
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    EnvUpdate { text, changes }
}

/// Credentials for an install: those already in the `.env` text, else fresh ones.
pub fn credentials_from(env_text: Option<&str>, force: bool) -> Credentials {
    let fresh = Credentials::generate();
    let Some(text) = env_text.filter(|_| !force) else {
        return fresh;
    };
    Credentials {
        app_id: env_value(text, "REVERB_APP_ID")
            .filter(|v| !v.is_empty())
            .unwrap_or(fresh.app_id),
        key: env_value(text, "REVERB_APP_KEY")
            .filter(|v| !v.is_empty())
            .unwrap_or(fresh.key),
        secret: env_value(text, "REVERB_APP_SECRET")
            .filter(|v| !v.is_empty())
            .unwrap_or(fresh.secret),
    }
}

/// Append the `[[apps]]` entry to a config file unless an app with this key exists.
/// Returns whether the file changed.
pub fn update_config(path: &Path, c: &Credentials) -> Result<bool, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
    let exists = doc
        .get("apps")
        .and_then(|a| a.as_array())
        .is_some_and(|apps| {
            apps.iter()
                .any(|app| app.get("key").and_then(|k| k.as_str()) == Some(c.key.as_str()))
        });
    if exists {
        return Ok(false);
    }
    let mut out = text;
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&toml_app(c));
    std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(true)
}

/// What `install` prints without `--write`.
pub fn printed_instructions(c: &Credentials) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Add to your Laravel app's .env:\nBROADCAST_CONNECTION=reverb"
    );
    for (i, (name, value)) in env_lines(c).iter().enumerate() {
        if i == 6 {
            out.push('\n');
        }
        let _ = writeln!(out, "{name}={value}");
    }
    let _ = writeln!(out, "\n# And to reverb-shard's config.toml (or run it with --env-file pointing at that .env):\n{}", toml_app(c));
    let _ = writeln!(
        out,
        "# Laravel side: add the `reverb` connection to config/broadcasting.php and run\n\
         # `php artisan install:broadcasting` (it installs laravel-echo and pusher-js)."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            app_id: "123456".into(),
            key: "k".repeat(20),
            secret: "s".repeat(20),
        }
    }

    #[test]
    fn generated_shapes() {
        let c = Credentials::generate();
        let id: u32 = c.app_id.parse().unwrap();
        assert!((100_000..1_000_000).contains(&id));
        for word in [&c.key, &c.secret] {
            assert_eq!(word.len(), 20);
            assert!(word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        }
        assert_ne!(c.key, Credentials::generate().key);
    }

    #[test]
    fn env_update_adds_missing_and_is_idempotent() {
        let laravel =
            "APP_NAME=Laravel\nBROADCAST_CONNECTION=log\nREVERB_HOST=\"ws.example.com\"\n";
        let first = update_env(laravel, &creds(), false);
        assert!(first.text.contains("BROADCAST_CONNECTION=reverb\n"));
        assert!(!first.text.contains("BROADCAST_CONNECTION=log"));
        assert!(
            first.text.contains("REVERB_HOST=\"ws.example.com\""),
            "existing values are kept"
        );
        assert_eq!(
            first
                .text
                .lines()
                .filter(|l| l.starts_with("REVERB_HOST="))
                .count(),
            1
        );
        assert!(first.text.contains("REVERB_APP_KEY=kkkkkkkkkkkkkkkkkkkk\n"));
        assert!(first
            .text
            .contains("VITE_REVERB_APP_KEY=\"${REVERB_APP_KEY}\"\n"));
        let second = update_env(&first.text, &creds(), false);
        assert_eq!(second.text, first.text);
        assert!(second.changes.is_empty());
    }

    #[test]
    fn force_replaces_reverb_values() {
        let text = "REVERB_APP_KEY=old\nBROADCAST_DRIVER=pusher\n";
        let up = update_env(text, &creds(), true);
        assert!(up.text.contains("REVERB_APP_KEY=kkkkkkkkkkkkkkkkkkkk\n"));
        assert!(up.text.contains("BROADCAST_DRIVER=reverb\n"));
        assert!(!up.text.contains("BROADCAST_CONNECTION"));
    }

    #[test]
    fn existing_credentials_are_reused() {
        let text =
            "REVERB_APP_ID=777777\nREVERB_APP_KEY=\"abc\"\nREVERB_APP_SECRET=def # comment\n";
        let c = credentials_from(Some(text), false);
        assert_eq!(
            c,
            Credentials {
                app_id: "777777".into(),
                key: "abc".into(),
                secret: "def".into()
            }
        );
    }
}
