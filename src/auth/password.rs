//! Argon2id (`Argon2::default()`: m=19456 KiB, t=2, p=1, the OWASP minimum) on the blocking
//! pool behind a semaphore, so a login burst cannot park every async worker or allocate
//! 19 MiB per concurrent request without bound.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but the stored hash uses weaker parameters than today's policy.
    YesNeedsRehash,
}

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy: Arc<String>,
}

fn argon2() -> Argon2<'static> {
    Argon2::default()
}

fn hash_sync(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Internal(e.to_string()))
}

fn verify_sync(password: &str, stored: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    if argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::No;
    }
    let current = Params::default();
    let weaker = parsed.algorithm.as_str() != Algorithm::Argon2id.ident().as_str()
        || parsed.version != Some(Version::V0x13.into())
        || Params::try_from(&parsed)
            .map(|p| p.m_cost() < current.m_cost() || p.t_cost() < current.t_cost())
            .unwrap_or(true);
    if weaker {
        Verified::YesNeedsRehash
    } else {
        Verified::Yes
    }
}

impl Hasher {
    /// `concurrency` bounds simultaneous hash computations. Computes the dummy hash used to
    /// make unknown-user logins cost the same as wrong-password logins.
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let mut random = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        let dummy = hash_sync(&hex::encode(random))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(dummy),
        })
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn limited<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError::Internal(e.to_string()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pw = password.to_owned();
        self.limited(move || hash_sync(&pw)).await?
    }

    /// Verifies against `stored`, or against the dummy hash when there is no user, so both
    /// paths take the same time; the dummy never verifies.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let pw = password.to_owned();
        let (target, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy.as_str().to_owned(), false),
        };
        let v = self.limited(move || verify_sync(&pw, &target)).await?;
        Ok(if real { v } else { Verified::No })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::new(2).unwrap();
        let stored = h.hash("correct horse battery").await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert_eq!(
            h.verify("correct horse battery", Some(&stored))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            h.verify("correct horse batterY", Some(&stored))
                .await
                .unwrap(),
            Verified::No
        );
        assert_eq!(h.verify("anything", None).await.unwrap(), Verified::No);
        assert_eq!(
            h.verify("x", Some("not a hash")).await.unwrap(),
            Verified::No
        );
    }

    #[tokio::test]
    async fn weak_hash_needs_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let stored = weak
            .hash_password(b"old password here", &salt)
            .unwrap()
            .to_string();
        let h = Hasher::new(1).unwrap();
        assert_eq!(
            h.verify("old password here", Some(&stored)).await.unwrap(),
            Verified::YesNeedsRehash
        );
    }
}
