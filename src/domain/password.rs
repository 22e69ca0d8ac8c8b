//! Passwords: 8–1024 bytes of any Unicode, checked against a list of very common passwords.
//!
//! No composition rules and no truncation (ASVS 6.2.5, 6.2.8); the upper bound keeps an
//! attacker from making us hash megabytes.

use super::ParseError;
use std::collections::HashSet;
use std::sync::LazyLock;

pub const MIN_CHARS: usize = 8;
pub const MAX_BYTES: usize = 1024;

/// The most common passwords of 8+ characters from public breach corpora; a top-N check is
/// what ASVS 6.2.4 asks for at level 1. Compared case-insensitively.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "12341234",
    "11111111",
    "00000000",
    "87654321",
    "88888888",
    "99999999",
    "12344321",
    "123123123",
    "123321123",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "qwerty1234",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "asdfghjkl",
    "asdf1234",
    "zxcvbnm1",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "superman",
    "trustno1",
    "letmein1",
    "letmein123",
    "abc12345",
    "abcd1234",
    "abcdefgh",
    "admin123",
    "administrator",
    "changeme",
    "changeme1",
    "computer",
    "internet",
    "michelle",
    "jennifer",
    "starwars",
    "whatever",
    "dragon123",
    "monkey123",
    "master123",
    "shadow123",
    "charlie1",
    "aa123456",
    "a1234567",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "1234qwer",
    "qazwsxedc",
    "passpass",
    "secret123",
    "default1",
    "test1234",
    "testtest",
    "access14",
    "mustang1",
    "batman123",
    "killer123",
    "hello123",
    "freedom1",
    "whatever1",
    "football1",
    "baseball1",
    "soccer123",
    "jordan23",
    "michael1",
    "liverpool",
    "chocolate",
    "password!",
    "Password1!",
    "watchpost",
];

/// The 10,000 most common passwords of 8+ characters (see the file's header for where
/// they come from), lower-cased; built on first use.
fn common_list() -> &'static HashSet<&'static str> {
    static LIST: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
        include_str!("common_passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });
    &LIST
}

#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

// Never print the secret, even in debug logs.
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Checks the policy for a new password (registration).
    pub fn parse_new(raw: &str) -> Result<Self, ParseError> {
        if raw.len() > MAX_BYTES {
            return Err(ParseError::new(format!(
                "password must be at most {MAX_BYTES} bytes"
            )));
        }
        if raw.chars().count() < MIN_CHARS {
            return Err(ParseError::new(format!(
                "password must be at least {MIN_CHARS} characters"
            )));
        }
        let lower = raw.to_lowercase();
        if COMMON.iter().any(|c| c.eq_ignore_ascii_case(&lower))
            || common_list().contains(lower.as_str())
        {
            return Err(ParseError::new(
                "password is too common; choose a less guessable one",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password presented at login: only the size bound applies, so that a change of
    /// policy never locks out an existing account.
    pub fn parse_login(raw: &str) -> Result<Self, ParseError> {
        if raw.len() > MAX_BYTES {
            return Err(ParseError::new(format!(
                "password must be at most {MAX_BYTES} bytes"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(Password::parse_new("short").is_err());
        assert!(Password::parse_new("1234567").is_err());
        assert!(Password::parse_new("password123").is_err());
        // From the long list, whatever the case, and its size.
        assert!(Password::parse_new("Sunshine1").is_err());
        assert!(Password::parse_new("QAZWSXEDC").is_err());
        assert!(Password::parse_new("trustno1").is_err());
        assert_eq!(common_list().len(), 10_000);
        assert!(common_list().iter().all(|p| p.chars().count() >= MIN_CHARS));
        assert!(Password::parse_new("correct horse battery").is_ok());
        assert!(Password::parse_new("PassWord123").is_err());
        assert!(Password::parse_new(&"é".repeat(513)).is_err()); // 1026 bytes
        assert!(Password::parse_new(&"a".repeat(1024)).is_ok());
        assert!(Password::parse_new("correct horse battery").is_ok());
        // Eight emoji are eight characters even though they are 32 bytes.
        assert!(Password::parse_new("🦀🦀🦀🦀🦀🦀🦀🦀").is_ok());
        assert!(Password::parse_new("🦀🦀🦀🦀🦀🦀🦀").is_err());
    }

    #[test]
    fn debug_redacts() {
        let p = Password::parse_new("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn accepted_passwords_respect_bounds(s in "\\PC{0,40}") {
            if let Ok(p) = Password::parse_new(&s) {
                prop_assert!(p.expose().chars().count() >= MIN_CHARS);
                prop_assert!(p.expose().len() <= MAX_BYTES);
                prop_assert_eq!(p.expose(), s.as_str());
            }
        }
    }
}
