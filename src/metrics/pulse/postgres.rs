//! Writing Pulse aggregates to PostgreSQL with the synchronous `postgres` client (on the
//! writer's own thread, never a shard's).
//!
//! The upsert is the one Pulse's `DatabaseStorage::upsertCount` issues: insert the
//! row, and on a conflict over `(bucket, period, type, aggregate, key_hash)` add the new
//! count to the stored value. `key_hash` is md5 of the key as a uuid. Pulse's original
//! migration makes it a generated column (`md5("key")::uuid`, so it must not be
//! written); newer Pulse schemas make it a plain column the writer fills. The schema
//! is looked up once per connection and the statement chosen to match.

use std::time::Duration;

use postgres::{Client, Config, NoTls};

use super::rows::Pending;

/// How long a connection attempt may take when the URL does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const UPSERT_GENERATED_HASH: &str = "\
    INSERT INTO pulse_aggregates (bucket, period, type, aggregate, key, value) \
    VALUES ($1::int8, $2::int8, $3::text, 'count', $4::text, $5::int8) \
    ON CONFLICT (bucket, period, type, aggregate, key_hash) \
    DO UPDATE SET value = pulse_aggregates.value + excluded.value";

const UPSERT_WRITTEN_HASH: &str = "\
    INSERT INTO pulse_aggregates (bucket, period, type, aggregate, key, key_hash, value) \
    VALUES ($1::int8, $2::int8, $3::text, 'count', $4::text, md5($4::text)::uuid, $5::int8) \
    ON CONFLICT (bucket, period, type, aggregate, key_hash) \
    DO UPDATE SET value = pulse_aggregates.value + excluded.value";

/// A parsed `postgres://` URL.
pub struct Target {
    config: Config,
    /// `host:port[/dbname]` for log lines: never the user's password.
    pub label: String,
}

impl Target {
    /// Parse a `postgres://` / `postgresql://` URL (or a key=value string). The error
    /// never repeats the URL, which may hold a password.
    pub fn parse(url: &str) -> Result<Target, String> {
        let mut config: Config = url
            .parse()
            .map_err(|e: postgres::Error| format!("not a usable PostgreSQL URL ({e})"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let label = label_of(&config);
        Ok(Target { config, label })
    }
}

fn label_of(config: &Config) -> String {
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_dbname() {
        Some(db) => format!("{host}:{port}/{db}"),
        None => format!("{host}:{port}"),
    }
}

/// An open connection that knows the table's shape.
pub struct Writer {
    client: Client,
    upsert: &'static str,
}

impl Writer {
    pub fn connect(target: &Target) -> Result<Writer, String> {
        let mut client = target.config.connect(NoTls).map_err(describe)?;
        // `attgenerated` is 's' for a stored generated column, '' for a plain one.
        let row = client
            .query_opt(
                "SELECT a.attgenerated::text FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass('pulse_aggregates') \
                 AND a.attname = 'key_hash' AND NOT a.attisdropped",
                &[],
            )
            .map_err(describe)?;
        let Some(row) = row else {
            return Err(
                "table pulse_aggregates (with key_hash) not found: run Pulse's migrations \
                 on this database"
                    .to_string(),
            );
        };
        let generated: String = row.get(0);
        let upsert = if generated.is_empty() {
            UPSERT_WRITTEN_HASH
        } else {
            UPSERT_GENERATED_HASH
        };
        Ok(Writer { client, upsert })
    }

    /// Write every pending row in one transaction: all of them count, or none.
    pub fn write(&mut self, pending: &Pending, app_ids: &[String]) -> Result<(), String> {
        let mut tx = self.client.transaction().map_err(describe)?;
        let statement = tx.prepare(self.upsert).map_err(describe)?;
        for (key, value) in pending.rows() {
            let Some(app_id) = app_ids.get(key.app) else {
                continue;
            };
            let params: [&(dyn postgres::types::ToSql + Sync); 5] = [
                &(key.bucket as i64),
                &(key.period as i64),
                &key.kind.type_name(),
                &app_id.as_str(),
                &(value.min(i64::MAX as u64) as i64),
            ];
            tx.execute(&statement, &params).map_err(describe)?;
        }
        tx.commit().map_err(describe)
    }

    /// Whether the connection is known to be gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// The error with the server's own message when there is one (`postgres::Error`'s
/// `Display` says only "db error" for those).
fn describe(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_never_hold_the_password() {
        let t = Target::parse("postgres://pulse:hunter2@db.internal:6543/app").unwrap();
        assert_eq!(t.label, "db.internal:6543/app");
        let t = Target::parse("postgresql://u:p@localhost").unwrap();
        assert_eq!(t.label, "localhost:5432");
        let e = Target::parse("postgres://u:hunter2@[::1:5432/x").err();
        assert!(e.is_none_or(|e| !e.contains("hunter2")));
    }
}
