//! API tokens: 256 random bits shown once as hex; only their SHA-256 digest is stored, so a
//! database leak does not leak usable tokens and lookups need no constant-time compare.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh token (64 hex characters) and the digest to store.
pub fn generate() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    let digest = digest_hex(&token);
    (token, digest)
}

/// SHA-256 of the token, hex encoded: the database key.
pub fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in constant time by comparing fixed-length digests, so neither
/// content nor length leaks through timing.
pub fn secrets_equal(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t1, d1) = generate();
        let (t2, _) = generate();
        assert_eq!(t1.len(), 64);
        assert_ne!(t1, t2);
        assert_eq!(digest_hex(&t1), d1);
        assert_ne!(t1, d1);
    }

    #[test]
    fn constant_time_compare() {
        assert!(secrets_equal("abcdefghijklmnop", "abcdefghijklmnop"));
        assert!(!secrets_equal("abcdefghijklmnoq", "abcdefghijklmnop"));
        assert!(!secrets_equal("", "abcdefghijklmnop"));
    }
}
