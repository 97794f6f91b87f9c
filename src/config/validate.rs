//! The checks that need every layer applied (config.md §2.1): at least one app, every app
//! with `app_id`/`key`/`secret`, no `key` or `app_id` used twice, readable TLS files, a
//! well-formed Redis URL when scaling is on; relative file paths are resolved against the
//! working directory. Also derives `useTLS` from `scheme` and adds the warnings that
//! concern the final result (demo credentials).

use std::path::Path;

use super::draft::{AppDraft, Draft, Origin, Tracked};
use super::redis_url::{masked, URL_FORM};
use super::{Config, ConfigError};

/// Turns the draft into the final configuration.
pub(super) fn finish(
    d: Draft,
    cwd: &Path,
    warnings: &mut Vec<String>,
) -> Result<Config, ConfigError> {
    let Draft {
        mut server,
        scaling,
        pulse,
        apps,
        origins,
    } = d;

    check_apps(&apps)?;

    // As configured, for messages; then resolved against the working directory.
    let configured = server.tls.clone();
    for path in [
        &mut server.tls.local_cert,
        &mut server.tls.local_pk,
        &mut server.pid_file,
    ]
    .into_iter()
    .flatten()
    {
        if path.is_relative() {
            *path = cwd.join(&*path);
        }
    }
    let shown = |t: Tracked, key: &str, value: &Path| {
        let value = value.display().to_string();
        match origins.get(&t) {
            Some(o) => o.show(&value),
            None => format!("{key} = {value:?}"),
        }
    };
    if server.tls.local_pk.is_some() && server.tls.local_cert.is_none() {
        let pk = configured.local_pk.as_deref().unwrap_or(Path::new(""));
        return Err(ConfigError::new(format!(
            "{}: local_pk is set but local_cert is not: expected [server.tls] local_cert \
             (REVERB_SHARD_TLS_CERT), the PEM certificate chain",
            shown(Tracked::TlsKey, "[server.tls] local_pk", pk)
        )));
    }
    for (t, key, path, as_configured) in [
        (
            Tracked::TlsCert,
            "[server.tls] local_cert",
            &server.tls.local_cert,
            &configured.local_cert,
        ),
        (
            Tracked::TlsKey,
            "[server.tls] local_pk",
            &server.tls.local_pk,
            &configured.local_pk,
        ),
    ] {
        if let (Some(path), Some(as_configured)) = (path, as_configured) {
            if let Err(e) = std::fs::read(path) {
                return Err(ConfigError::new(format!(
                    "{}: cannot read {}: {e}; expected a readable PEM file",
                    shown(t, key, as_configured),
                    path.display()
                )));
            }
        }
    }

    if scaling.enabled {
        if let Some(url) = &scaling.redis.url {
            if let Err(e) = scaling.redis.endpoint() {
                let value = masked(url);
                let place = match origins.get(&Tracked::RedisUrl) {
                    Some(o) => o.show(&value),
                    None => format!("[scaling.redis] url = {value:?}"),
                };
                return Err(ConfigError::new(format!("{place}: {e} (form: {URL_FORM})")));
            }
        }
    }

    let mut out = Vec::with_capacity(apps.len());
    for AppDraft { mut app, .. } in apps {
        if app.options.use_tls.is_none() {
            app.options.use_tls = app.options.scheme.as_deref().map(|s| s == "https");
        }
        if app.key == "app-key" && app.secret == "app-secret" {
            warnings.push(format!(
                "app {} uses the demo credentials from the shipped config.toml (key app-key); \
                 generate your own for anything but local development",
                app.app_id
            ));
        }
        out.push(app);
    }

    Ok(Config {
        server,
        scaling,
        apps: out,
        pulse,
    })
}

fn check_apps(apps: &[AppDraft]) -> Result<(), ConfigError> {
    if apps.is_empty() {
        return Err(ConfigError::new(
            "no apps configured: add an [[apps]] entry with app_id, key and secret to \
             config.toml (see the shipped config.toml), or set REVERB_APP_ID, REVERB_APP_KEY \
             and REVERB_APP_SECRET (in the environment or .env)",
        ));
    }
    for (i, a) in apps.iter().enumerate() {
        for (field, value, var, what) in [
            (
                "app_id",
                &a.app.app_id,
                "REVERB_APP_ID",
                "the id used by the HTTP API",
            ),
            (
                "key",
                &a.app.key,
                "REVERB_APP_KEY",
                "the public key clients connect with",
            ),
            (
                "secret",
                &a.app.secret,
                "REVERB_APP_SECRET",
                "the signing secret",
            ),
        ] {
            if value.is_empty() {
                let or_env = if i == 0 {
                    format!(", or set {var}")
                } else {
                    String::new()
                };
                return Err(ConfigError::new(format!(
                    "{} has no {field} ({what}): add {field} = \"…\" to it{or_env}",
                    a.origin
                )));
            }
        }
    }
    for (j, b) in apps.iter().enumerate() {
        for a in &apps[..j] {
            if a.app.key == b.app.key {
                return Err(duplicate("key", &a.app.key, a, b, |x| &x.key_from));
            }
            if a.app.app_id == b.app.app_id {
                return Err(duplicate("app_id", &a.app.app_id, a, b, |x| &x.app_id_from));
            }
        }
    }
    Ok(())
}

fn duplicate(
    field: &str,
    value: &str,
    a: &AppDraft,
    b: &AppDraft,
    from: impl Fn(&AppDraft) -> &Option<Origin>,
) -> ConfigError {
    let place = |x: &AppDraft| match from(x) {
        Some(o) => o.place(),
        None => x.origin.clone(),
    };
    ConfigError::new(format!(
        "duplicate app {field} {value:?}: {} and {} both use it; every app needs its own \
         {field}",
        place(a),
        place(b)
    ))
}
