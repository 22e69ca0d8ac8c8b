//! The log analyzer: a pure, streaming library (no IO, no async): bytes in, a `Report` out.

pub mod model;

pub use model::{Format, Level};
