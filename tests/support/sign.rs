//! The tests' own signing primitives (lowercase hex HMAC-SHA256 and MD5), written
//! independently of the server's so a shared mistake cannot hide.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// Lowercase hex HMAC-SHA256 of `message` keyed by `secret`.
pub fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Lowercase hex MD5 (`body_md5`).
pub fn md5_hex(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
