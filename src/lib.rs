//! watchpost: self-hosted host metrics, threshold alerts and a JSON API in one binary.

/// `watchpost agent`: sample a host and push to a server, buffering through outages.
pub mod agent;
/// Threshold evaluation as a pure state machine.
pub mod alerts;
/// `watchpost analyze`: files in, a readable or JSON report out.
pub mod analyze_cli;
/// Start-up and the serve loop.
pub mod app;
/// Password hashing and API tokens.
pub mod auth;
/// Server-rendered SVG charts.
pub mod charts;
/// Command-line interface.
pub mod cli;
/// Host metrics sampling.
pub mod collect;
/// Typed settings.
pub mod config;
/// Domain newtypes that parse input.
pub mod domain;
/// HTTP routes, middleware and server.
pub mod http;
/// Agent ingest: wire format and the group-commit writer.
pub mod ingest;
/// The log analyzer: streaming, format-aware, template mining (pure library).
pub mod logs;
/// Notifications: signed webhooks, email, retry policy and the outbox worker.
pub mod notify;
/// Prometheus exposition: the service's own counters and the text format.
pub mod prom;
/// Demo data.
pub mod seed;
/// Storage trait and engines.
pub mod store;
/// Background tasks.
pub mod tasks;
/// Logging setup.
pub mod telemetry;
