//! The metrics that thresholds apply to, named as the original service named alert types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Cpu,
    Memory,
}

impl MetricKind {
    pub const ALL: [MetricKind; 2] = [MetricKind::Cpu, MetricKind::Memory];

    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Cpu => "cpu",
            MetricKind::Memory => "memory",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cpu" => Some(MetricKind::Cpu),
            "memory" => Some(MetricKind::Memory),
            _ => None,
        }
    }
}
