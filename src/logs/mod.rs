//! The log analyzer: a pure, streaming library (no IO, no async): bytes in, a `Report` out.

pub mod analyzer;
pub mod formats;
pub mod gen;
pub mod model;
pub mod template;

pub use analyzer::{analyze_bytes, AnalyzeError, Analyzer, AnalyzerConfig, Report};
pub use model::{Format, Level};
