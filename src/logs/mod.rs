//! The log analyzer: a pure, streaming library (no IO, no async): bytes in, a `Report` out.

pub mod analyzer;
pub mod formats;
pub mod gen;
pub mod model;
pub mod parallel;
pub mod template;

pub use analyzer::{
    analyze_block, analyze_bytes, AnalyzeError, Analyzer, AnalyzerConfig, Block, Blocks,
    InputTotals, LineNote, Merger, Part, Report, TemplateRow,
};
pub use model::{Format, Level};
pub use parallel::{Gate, ParallelAnalyzer};
