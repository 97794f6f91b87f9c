//! TLS on the server's one port (operations.md §5): find the certificate and key
//! (`[server.tls]`, else Laravel Herd's or Valet's certificate for `hostname`), read
//! the PEM files (an encrypted PKCS#8 key is opened with `passphrase`) and build the
//! rustls `ServerConfig` that every shard shares.
//!
//! All of this runs once on the main thread before anything listens, so a bad file is
//! a configuration error (exit code 2) whose message names the file and the setting.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use crate::config::{ServerConfig, TlsConfig};

/// TLS material ready for the shards.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// Set when the files came from the Herd/Valet lookup (for the start log).
    pub found: Option<Found>,
}

/// A certificate found by the Herd/Valet lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where the files came from, for error messages that name the setting.
enum Source {
    Configured,
    HerdValet,
}

/// The TLS set-up the configuration asks for: `None` when TLS is off. `home` is the
/// user's home directory (the Herd/Valet lookup; `None` skips it).
pub fn load(server: &ServerConfig, home: Option<&Path>) -> Result<Option<Tls>, String> {
    let TlsConfig {
        local_cert,
        local_pk,
        passphrase,
    } = &server.tls;
    // TLS is on iff local_cert or local_pk is set (validate.rs already refuses a key
    // without a certificate).
    if let Some(cert) = local_cert {
        let config = build(
            cert,
            local_pk.as_deref(),
            passphrase.as_deref(),
            Source::Configured,
        )?;
        return Ok(Some(Tls {
            config,
            found: None,
        }));
    }
    if local_pk.is_some() {
        return Err(
            "[server.tls] local_pk (REVERB_SHARD_TLS_KEY) is set but local_cert \
                    (REVERB_SHARD_TLS_CERT) is not"
                .into(),
        );
    }
    let (Some(hostname), Some(home)) = (&server.hostname, home) else {
        return Ok(None);
    };
    let Some(found) = herd_valet_certificate(hostname, home) else {
        return Ok(None);
    };
    let config = build(
        &found.cert,
        Some(&found.key),
        passphrase.as_deref(),
        Source::HerdValet,
    )?;
    Ok(Some(Tls {
        config,
        found: Some(found),
    }))
}

/// Reverb's lookup: `{host}.crt` and `{host}.key` in Herd's certificate folder (macOS,
/// then the Linux/Windows layout), then Valet's; the first folder holding both wins.
pub fn herd_valet_certificate(hostname: &str, home: &Path) -> Option<Found> {
    let host = host_part(hostname);
    if host.is_empty() || host.contains('/') || host.contains('\\') {
        return None;
    }
    [
        "Library/Application Support/Herd/config/valet/Certificates",
        ".config/herd/config/valet/Certificates",
        ".config/valet/Certificates",
    ]
    .iter()
    .map(|dir| Found {
        cert: home.join(dir).join(format!("{host}.crt")),
        key: home.join(dir).join(format!("{host}.key")),
    })
    .find(|f| f.cert.is_file() && f.key.is_file())
}

/// The host of `hostname`, which may be a bare name, `name:port` or a URL.
fn host_part(hostname: &str) -> &str {
    let rest = hostname.split_once("://").map_or(hostname, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The shared server configuration from a certificate chain file and a key file (the
/// key may also sit in the certificate file).
fn build(
    cert_path: &Path,
    key_path: Option<&Path>,
    passphrase: Option<&str>,
    source: Source,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let (cert_name, key_name) = match source {
        Source::Configured => (
            "[server.tls] local_cert (REVERB_SHARD_TLS_CERT)",
            "[server.tls] local_pk (REVERB_SHARD_TLS_KEY)",
        ),
        Source::HerdValet => (
            "the Herd/Valet certificate",
            "the Herd/Valet certificate key",
        ),
    };
    let cert_file = PemFile::read(cert_path, cert_name)?;
    let certs: Vec<CertificateDer<'static>> = cert_file
        .sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in {}; expected a PEM file with the certificate chain \
             (-----BEGIN CERTIFICATE----- blocks, the server's certificate first)",
            cert_file.name,
            cert_path.display()
        ));
    }
    let key_file = match key_path {
        Some(path) => PemFile::read(path, key_name)?,
        None => cert_file,
    };
    let key = key_file.private_key(passphrase)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            let key_shown = key_path.unwrap_or(cert_path).display();
            format!(
                "{cert_name} {} with the key in {key_shown}: {e}; expected the certificate \
                 chain and its matching private key",
                cert_path.display()
            )
        })?;
    // One protocol on this port; a client offering only h2 is refused in the
    // handshake instead of talking HTTP/1.1 to an h2 parser.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: with SO_REUSEPORT a reconnecting client lands on any
    // shard, so only a process-wide cache (a lock taken by every handshake) would
    // help, and WebSocket clients reconnect rarely. A full handshake is cheap enough.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A PEM file's decoded sections, with what to call it in messages.
struct PemFile {
    path: PathBuf,
    name: &'static str,
    text: Vec<u8>,
    sections: Vec<(SectionKind, Vec<u8>)>,
}

impl PemFile {
    fn read(path: &Path, name: &'static str) -> Result<PemFile, String> {
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "{name}: cannot read {}: {e}; expected a readable PEM file",
                path.display()
            )
        })?;
        if contains(&text, b"Proc-Type: 4,ENCRYPTED") {
            return Err(format!(
                "{name}: {} holds a key encrypted in the legacy OpenSSL format, which is not \
                 supported; convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 \
                 aes-256-cbc -in OLD -out NEW) or store it unencrypted",
                path.display()
            ));
        }
        let sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{name}: {} is not a valid PEM file ({e})", path.display()))?;
        Ok(PemFile {
            path: path.to_path_buf(),
            name,
            text,
            sections,
        })
    }

    /// The first private key of the file, decrypted with `passphrase` when it is an
    /// encrypted PKCS#8 key.
    fn private_key(&self, passphrase: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
        let path = self.path.display();
        for (kind, der) in &self.sections {
            let key = match kind {
                SectionKind::PrivateKey => PrivatePkcs8KeyDer::from(der.clone()).into(),
                SectionKind::RsaPrivateKey => PrivatePkcs1KeyDer::from(der.clone()).into(),
                SectionKind::EcPrivateKey => PrivateSec1KeyDer::from(der.clone()).into(),
                _ => continue,
            };
            return Ok(key);
        }
        let Some(block) = pem_block(&self.text, "ENCRYPTED PRIVATE KEY") else {
            return Err(format!(
                "{}: no private key in {path}; expected a PEM private key (-----BEGIN PRIVATE \
                 KEY-----, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY)",
                self.name
            ));
        };
        let Some(passphrase) = passphrase else {
            return Err(format!(
                "{}: the private key in {path} is encrypted, but no passphrase is set; set \
                 [server.tls] passphrase (REVERB_SHARD_TLS_PASSPHRASE)",
                self.name
            ));
        };
        let decrypted = pkcs8::der::pem::decode_vec(block)
            .map_err(|e| e.to_string())
            .and_then(|(_, der)| {
                let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| e.to_string())?;
                info.decrypt(passphrase).map_err(|e| e.to_string())
            })
            .map_err(|e| {
                format!(
                    "{}: cannot decrypt the private key in {path} ({e}); check [server.tls] \
                     passphrase (REVERB_SHARD_TLS_PASSPHRASE); supported: PKCS#8 with PBES2 \
                     (PBKDF2 or scrypt, AES-CBC)",
                    self.name
                )
            })?;
        Ok(PrivatePkcs8KeyDer::from(decrypted.as_bytes().to_vec()).into())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of the first `-----BEGIN {label}-----` … `-----END {label}-----` block.
fn pem_block<'a>(text: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .windows(begin.len())
        .position(|w| w == begin.as_bytes())?;
    let len = text[start..]
        .windows(end.len())
        .position(|w| w == end.as_bytes())?;
    Some(&text[start..start + len + end.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        assert_eq!(host_part("laravel.test"), "laravel.test");
        assert_eq!(host_part("laravel.test:8080"), "laravel.test");
        assert_eq!(host_part("https://laravel.test:8080/x"), "laravel.test");
        assert_eq!(host_part("wss://user@laravel.test"), "laravel.test");
        assert_eq!(host_part("[::1]:8080"), "::1");
    }

    #[test]
    fn lookup_order_and_both_files_needed() {
        let home = tempfile::tempdir().unwrap();
        let put = |dir: &str, file: &str| {
            let d = home.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(file), "x").unwrap();
        };
        assert_eq!(herd_valet_certificate("site.test", home.path()), None);
        let valet = ".config/valet/Certificates";
        put(valet, "site.test.crt");
        // A certificate without its key is no match.
        assert_eq!(herd_valet_certificate("site.test", home.path()), None);
        put(valet, "site.test.key");
        let found = herd_valet_certificate("https://site.test:8080", home.path()).unwrap();
        assert_eq!(found.cert, home.path().join(valet).join("site.test.crt"));
        // Herd's folders come before Valet's.
        let herd = "Library/Application Support/Herd/config/valet/Certificates";
        put(herd, "site.test.crt");
        put(herd, "site.test.key");
        let found = herd_valet_certificate("site.test", home.path()).unwrap();
        assert_eq!(found.key, home.path().join(herd).join("site.test.key"));
    }

    #[test]
    fn pem_block_finds_the_labelled_block() {
        let text = b"junk\n-----BEGIN A-----\nabc\n-----END A-----\ntail";
        assert_eq!(
            pem_block(text, "A"),
            Some(&b"-----BEGIN A-----\nabc\n-----END A-----"[..])
        );
        assert_eq!(pem_block(text, "B"), None);
    }
}
