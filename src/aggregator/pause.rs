//! The operator's pause switch (`POST /v1/pause`, `/v1/resume`), shared by
//! the dispatcher (no new leases) and the chain senders (no new
//! transactions). Work in flight is not interrupted: leased tasks may still
//! be submitted and sent transactions are still followed to their receipts,
//! so pausing loses nothing.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct PauseSwitch(AtomicBool);

impl PauseSwitch {
    pub fn set(&self, paused: bool) {
        self.0.store(paused, Ordering::SeqCst);
    }

    pub fn is_paused(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
