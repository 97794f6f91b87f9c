//! The configuration while the layers are being applied: the public types plus where each
//! setting that is checked late (credentials, TLS files, Redis URL, …) came from, so that
//! validation errors can name the file and line or the variable.

use std::collections::HashMap;

use super::{AppConfig, PulseConfig, ScalingConfig, ServerConfig};

/// Where a value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// A TOML key: `at` = "config.toml line 5", `key` = "[server.tls] local_cert".
    Toml { at: String, key: String },
    /// An environment variable: `from` = "the environment" or "/app/.env line 3".
    Env { var: String, from: String },
}

impl Origin {
    /// The setting with its value, e.g. `config.toml line 5: [server.tls] local_cert = "x.pem"`
    /// or `REVERB_SHARD_TLS_CERT=x.pem (from the environment)`.
    pub fn show(&self, value: &str) -> String {
        match self {
            Origin::Toml { at, key } => format!("{at}: {key} = {value:?}"),
            Origin::Env { var, from } => format!("{var}={value} (from {from})"),
        }
    }

    /// Only where, e.g. `config.toml line 5` or `REVERB_APP_KEY (from the environment)`.
    pub fn place(&self) -> String {
        match self {
            Origin::Toml { at, key } => format!("{key} at {at}"),
            Origin::Env { var, from } => format!("{var} (from {from})"),
        }
    }
}

/// One app entry under construction; credentials are empty until a layer sets them.
#[derive(Debug, Clone)]
pub(super) struct AppDraft {
    pub app: AppConfig,
    /// Where the entry itself is defined, e.g. "[[apps]] entry #2 at config.toml line 31".
    pub origin: String,
    pub app_id_from: Option<Origin>,
    pub key_from: Option<Origin>,
    pub secret_from: Option<Origin>,
}

impl AppDraft {
    pub fn new(origin: String) -> Self {
        AppDraft {
            app: AppConfig::new("", "", ""),
            origin,
            app_id_from: None,
            key_from: None,
            secret_from: None,
        }
    }
}

/// Settings whose origin is remembered for late checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Tracked {
    TlsCert,
    TlsKey,
    PidFile,
    RedisUrl,
}

/// The configuration being built, lowest layer first.
#[derive(Debug, Clone, Default)]
pub(super) struct Draft {
    pub server: ServerConfig,
    pub scaling: ScalingConfig,
    pub pulse: PulseConfig,
    pub apps: Vec<AppDraft>,
    pub origins: HashMap<Tracked, Origin>,
}
