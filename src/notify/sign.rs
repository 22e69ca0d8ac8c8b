//! Standard Webhooks (<https://www.standardwebhooks.com>) secrets, message ids and `v1` signatures.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::{Rng, RngCore};
use sha2::Sha256;

/// Prefix the spec uses for symmetric secrets, so a secret is recognisable when pasted.
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest key we accept: the spec asks for 24..=64 bytes; shorter keys are guessable.
pub const MIN_SECRET_BYTES: usize = 24;
/// Longest key we accept (per spec).
pub const MAX_SECRET_BYTES: usize = 64;

/// Why a webhook secret was refused. Deliberately never contains the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("webhook secret is not valid base64 (expected \"whsec_\" followed by base64)")]
    NotBase64,
    #[error("webhook secret must decode to between 24 and 64 bytes, got {0}")]
    BadLength(usize),
}

/// A fresh secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

/// The key bytes of a `whsec_…` (or bare base64) secret.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, SecretError> {
    let s = s.trim();
    let encoded = s.strip_prefix(SECRET_PREFIX).unwrap_or(s);
    let key = B64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        return Err(SecretError::BadLength(key.len()));
    }
    Ok(key)
}

/// A fresh message id (`msg_` + 27 alphanumerics); it stays the same across retries so
/// receivers can deduplicate.
pub fn new_message_id() -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(27)
        .map(char::from)
        .collect();
    format!("msg_{suffix}")
}

/// The `webhook-signature` header value: `v1,` + base64(HMAC-SHA256(secret, "{id}.{ts}.{body}")).
pub fn sign(secret: &[u8], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC
    // rather than panicking should that ever change.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::from("v1,"),
    };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answer_vector_from_the_spec() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_signature_verifies_with_the_reference_crate() {
        let secret = generate_secret();
        let key = parse_secret(&secret).unwrap();
        assert_eq!(key.len(), 32);
        let id = new_message_id();
        // The reference implementation checks the timestamp against now ± 5 minutes.
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"type":"cpu","value":93.2}"#;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert(
            "webhook-signature",
            sign(&key, &id, now, body).parse().unwrap(),
        );
        let wh = standardwebhooks::Webhook::new(&secret).unwrap();
        wh.verify(body, &headers).unwrap();
        // A tampered body must not verify.
        assert!(wh.verify(br#"{"type":"cpu","value":1}"#, &headers).is_err());
    }

    #[test]
    fn secrets_and_ids_have_the_documented_shape() {
        let s = generate_secret();
        assert!(s.starts_with("whsec_"));
        assert_ne!(s, generate_secret());
        let id = new_message_id();
        assert_eq!(id.len(), 4 + 27);
        assert!(id.starts_with("msg_"));
        assert!(id[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(id, new_message_id());
    }

    #[test]
    fn parse_secret_accepts_bare_base64_and_refuses_bad_input_without_echoing_it() {
        let bare = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(parse_secret(bare).unwrap().len(), 24);
        let short = format!("whsec_{}", B64.encode([7u8; 23]));
        assert_eq!(parse_secret(&short), Err(SecretError::BadLength(23)));
        let long = format!("whsec_{}", B64.encode([7u8; 65]));
        assert_eq!(parse_secret(&long), Err(SecretError::BadLength(65)));
        assert!(parse_secret(&format!("whsec_{}", B64.encode([7u8; 64]))).is_ok());
        let garbage = "whsec_not*base64!!secretvalue";
        let err = parse_secret(garbage).unwrap_err();
        assert_eq!(err, SecretError::NotBase64);
        assert!(!err.to_string().contains("secretvalue"));
        assert!(parse_secret("").is_err());
    }

    proptest! {
        #[test]
        fn parse_secret_never_panics(s in ".*") {
            let _ = parse_secret(&s);
        }

        #[test]
        fn parse_secret_never_panics_on_prefixed_base64ish(s in "whsec_[A-Za-z0-9+/=]{0,120}") {
            if let Ok(key) = parse_secret(&s) {
                prop_assert!((24..=64).contains(&key.len()));
            }
        }
    }
}
