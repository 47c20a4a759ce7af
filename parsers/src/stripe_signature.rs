//! The `Stripe-Signature` header of Stripe's webhook deliveries, parsed
//! and checked without a server, so that fuzz targets and property tests
//! call it directly.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from now, in seconds. Stripe's
/// libraries use the same 5 minutes against replayed deliveries.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// The reason a `Stripe-Signature` header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no valid t= timestamp")]
    NoTimestamp,
    #[error("the Stripe-Signature header has no v1= signature")]
    NoSignature,
    #[error("the signature timestamp is more than {SIGNATURE_TOLERANCE_SECS} s from now")]
    OutsideTolerance,
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// A parsed `Stripe-Signature` header: its timestamp and every `v1`
/// signature, decoded from hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
    pub signatures: Vec<Vec<u8>>,
}

/// Parses a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`). Other schemes
/// (`v0=`) and `v1` values that are not hex are skipped.
pub fn parse_signature_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse().ok(),
            Some(("v1", value)) => {
                if let Some(bytes) = decode_hex(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::NoTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    Ok(SignatureHeader { timestamp, signatures })
}

/// Checks a `Stripe-Signature` header against the raw body: one `v1` value
/// must equal HMAC-SHA256 of `"{t}.{body}"` under `secret`, and `t` must be
/// within `SIGNATURE_TOLERANCE_SECS` of `now_secs`. Several `v1` values
/// occur while a webhook secret is being rolled.
pub fn verify_signature(header: &str, body: &[u8], secret: &[u8], now_secs: i64) -> Result<(), SignatureError> {
    let SignatureHeader { timestamp, signatures } = parse_signature_header(header)?;
    // saturating_sub: a timestamp near i64::MIN or MAX must not overflow.
    if now_secs.saturating_sub(timestamp).saturating_abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::OutsideTolerance);
    }

    for signature in &signatures {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // verify_slice compares in constant time.
        if mac.verify_slice(signature).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks the signature check's contract on one arbitrary input and panics
/// when it is broken: the first 8 bytes are the clock, the rest up to a
/// newline the header, and after it the body. Nothing may panic, and
/// without the secret no input may verify. The fuzz target and the tests
/// call it.
pub fn check_any_header(data: &[u8]) {
    let (clock, rest) = data.split_at(data.len().min(8));
    let mut clock_bytes = [0u8; 8];
    clock_bytes[..clock.len()].copy_from_slice(clock);
    let now_secs = i64::from_le_bytes(clock_bytes);
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let header = String::from_utf8_lossy(header);

    let _ = parse_signature_header(&header);
    let verified = verify_signature(&header, body, b"whsec_fuzz_secret_never_in_input", now_secs);
    assert!(verified.is_err(), "an unsigned input verified: {header:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn valid_signature_accepted() {
        let header = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
        assert_eq!(verify_signature(&header, BODY, SECRET, NOW), Ok(()));
    }

    #[test]
    fn any_of_several_v1_accepted() {
        let header = format!("t={NOW},v1={},v1={},v0=abc", sign(b"old", NOW, BODY), sign(SECRET, NOW, BODY));
        assert_eq!(verify_signature(&header, BODY, SECRET, NOW), Ok(()));
    }

    #[test]
    fn changed_body_rejected() {
        let header = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
        assert_eq!(verify_signature(&header, br#"{"id":"evt_2"}"#, SECRET, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn tolerance_is_five_minutes_both_ways() {
        let header = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
        assert_eq!(verify_signature(&header, BODY, SECRET, NOW + 300), Ok(()));
        assert_eq!(verify_signature(&header, BODY, SECRET, NOW - 300), Ok(()));
        assert_eq!(verify_signature(&header, BODY, SECRET, NOW + 301), Err(SignatureError::OutsideTolerance));
        assert_eq!(verify_signature(&header, BODY, SECRET, NOW - 301), Err(SignatureError::OutsideTolerance));
    }

    #[test]
    fn malformed_headers_rejected() {
        assert_eq!(verify_signature("", BODY, SECRET, NOW), Err(SignatureError::NoTimestamp));
        assert_eq!(verify_signature(&format!("t={NOW}"), BODY, SECRET, NOW), Err(SignatureError::NoSignature));
        assert_eq!(verify_signature(&format!("t={NOW},v1=zz"), BODY, SECRET, NOW), Err(SignatureError::NoSignature));
        assert_eq!(verify_signature("t=soon,v1=00", BODY, SECRET, NOW), Err(SignatureError::NoTimestamp));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_header_is_parsed_or_rejected(header in ".{0,200}", now in any::<i64>()) {
                // Neither may panic; the result only has to be an error.
                let _ = parse_signature_header(&header);
                prop_assert!(verify_signature(&header, BODY, SECRET, now).is_err());
            }

            #[test]
            fn any_input_passes_the_fuzz_check(data in prop::collection::vec(any::<u8>(), 0..300)) {
                check_any_header(&data);
            }

            #[test]
            fn extreme_timestamps_are_rejected(timestamp in any::<i64>(), now in any::<i64>()) {
                let header = format!("t={timestamp},v1={}", sign(SECRET, timestamp, BODY));
                let result = verify_signature(&header, BODY, SECRET, now);
                let within = (i128::from(now) - i128::from(timestamp)).abs() <= i128::from(SIGNATURE_TOLERANCE_SECS);
                prop_assert_eq!(result.is_ok(), within, "{:?}", result);
            }

            #[test]
            fn signed_body_verifies_and_any_change_fails(
                body in prop::collection::vec(any::<u8>(), 0..256),
                secret in prop::collection::vec(any::<u8>(), 1..64),
                skew in -SIGNATURE_TOLERANCE_SECS..=SIGNATURE_TOLERANCE_SECS,
                flip in any::<prop::sample::Index>(),
            ) {
                let header = format!("t={},v1={}", NOW + skew, sign(&secret, NOW + skew, &body));
                prop_assert_eq!(verify_signature(&header, &body, &secret, NOW), Ok(()));

                let mut changed = body.clone();
                if changed.is_empty() {
                    changed.push(0);
                } else {
                    let at = flip.index(changed.len());
                    changed[at] ^= 0x01;
                }
                prop_assert_eq!(verify_signature(&header, &changed, &secret, NOW), Err(SignatureError::Mismatch));
            }
        }
    }
}

