//! `Confab-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`,
//! computed over the raw body bytes with the app's webhook secret
//! (api.md). Receivers verify before parsing and reject timestamps older
//! than [`TOLERANCE_SECS`]; [`verify`] is the reference for docs/webhooks.md.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Confab-Signature";
/// The header carrying the event id (also `id` in the body).
pub const EVENT_ID_HEADER: &str = "Confab-Event-Id";
/// How old a signed timestamp a receiver accepts.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The header value for `body` signed at `timestamp` (unix seconds).
pub fn header_value(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex(&digest))
}

/// Whether `header` is a valid signature of `body` no older than the
/// tolerance at `now` (unix seconds). Compares in constant time.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if (now - t).abs() > TOLERANCE_SECS {
        return false;
    }
    signatures.into_iter().any(|sig| {
        let Some(bytes) = unhex(sig) else {
            return false;
        };
        mac(secret, t, body).verify_slice(&bytes).is_ok()
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_vector() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            header_value("whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn verifies_and_rejects() {
        let body = br#"{"id":"01J","type":"test"}"#;
        let h = header_value("s3cret", 1_000_000, body);
        assert!(verify("s3cret", &h, body, 1_000_000));
        assert!(verify("s3cret", &h, body, 1_000_000 + TOLERANCE_SECS));
        assert!(
            !verify("s3cret", &h, body, 1_000_000 + TOLERANCE_SECS + 1),
            "too old"
        );
        assert!(!verify("other", &h, body, 1_000_000), "wrong secret");
        assert!(
            !verify("s3cret", &h, br#"{"id":"01J","type":"tost"}"#, 1_000_000),
            "body changed"
        );
        assert!(!verify("s3cret", "t=1000000", body, 1_000_000));
        assert!(!verify("s3cret", "garbage", body, 1_000_000));
    }
}
