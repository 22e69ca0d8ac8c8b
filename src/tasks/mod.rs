//! Background work. Each task is a loop around a public `step()` that tests call directly.

pub mod agent_alerts;
pub mod alerting;
pub mod collector;
pub mod janitor;
pub mod retention;

use std::time::Duration;
use tokio::sync::watch;

/// A cloneable "stop now" signal for background loops.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop signal is given (at once if it already was).
    pub async fn stopped(&mut self) {
        // An error means the sender is gone, which can only happen at shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Sleeps for `d`; returns false if the stop signal came first.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        if *self.0.borrow() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            _ = self.0.changed() => false,
        }
    }
}
