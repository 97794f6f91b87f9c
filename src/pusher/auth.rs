//! Signatures: lowercase hex HMAC-SHA256 with the app secret, compared in constant time
//! (websocket.md §8.1, §14).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Lowercase hex HMAC-SHA256 of `message` keyed by `secret`.
pub fn sign(secret: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Lowercase hex of a digest (signatures, `body_md5`).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap());
        out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap());
    }
    out
}

/// Check an `auth` value (`key:signature`, or a bare signature) against `message`.
/// Only the part after the first `:` is compared; the key part is not checked (Reverb).
pub fn verify(secret: &str, message: &str, auth: &str) -> bool {
    if auth.is_empty() {
        return false;
    }
    let given = auth.split_once(':').map_or(auth, |(_, sig)| sig);
    let expected = sign(secret, message);
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_worked_examples() {
        assert_eq!(
            sign("app-secret", "123456789.987654321:private-orders.42"),
            "89cb3d79fcfe7beffb870e778a4dfa0ce2282d0ece6272e98e18c3e344894e4e"
        );
        assert_eq!(
            sign(
                "app-secret",
                r#"123456789.987654321:presence-room.1:{"user_id":7,"user_info":{"name":"Ada"}}"#
            ),
            "6602477fe21edc15ef8e6a877db2529a370c365b7b3e26762c4b60fab50e998c"
        );
        assert_eq!(
            sign("7ad3773142a6692b25b8", "1234.1234:private-foobar"),
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert_eq!(
            sign(
                "app-secret",
                r#"123456789.987654321::user::{"id":"7","user_info":{"name":"Ada"}}"#
            ),
            "067d9edea87a7487db305eb944f3b87057e554714f8c8b235ef8e5ed8afcfddf"
        );
    }

    #[test]
    fn verify_rules() {
        let msg = "123456789.987654321:private-orders.42";
        let sig = "89cb3d79fcfe7beffb870e778a4dfa0ce2282d0ece6272e98e18c3e344894e4e";
        assert!(verify("app-secret", msg, &format!("app-key:{sig}")));
        assert!(verify("app-secret", msg, &format!("any-key:{sig}")));
        assert!(verify("app-secret", msg, sig));
        assert!(!verify("app-secret", msg, ""));
        assert!(!verify(
            "app-secret",
            msg,
            &format!("app-key:{}", sig.to_uppercase())
        ));
        assert!(!verify("wrong", msg, &format!("app-key:{sig}")));
    }
}
