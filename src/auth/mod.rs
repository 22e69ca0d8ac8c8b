//! Authentication primitives: argon2id password hashing off the async runtime, API tokens.

pub mod password;
pub mod tokens;

pub use password::Hasher;
