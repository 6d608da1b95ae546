//! `CommitMonitor`: consumes `monitPHTxCache` (sequences whose commit is in
//! flight, or mined and waiting for the reveal phase) and passes each to
//! the revealer once the reveal phase opens.
//!
//! It sends nothing: its work is the wait itself. A mined commit sleeps on
//! a block timer until T1's last block (the chain cannot open the reveal
//! phase earlier), so a backlog of committed sequences costs no RPC calls
//! per block. A commit that was never mined, was reorged away or whose
//! window ended meanwhile is handed back to the committer by the same
//! routing.

use std::sync::Arc;

use actix::prelude::*;

use super::{round_of, Round, SenderCore, Stage};
use crate::metrics;

pub struct CommitMonitor {
    core: Arc<SenderCore>,
}

impl CommitMonitor {
    pub fn new(core: Arc<SenderCore>) -> Self {
        CommitMonitor { core }
    }
}

impl Actor for CommitMonitor {
    type Context = actix::Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_started(self.core.chain(), Stage::Monitor.actor());
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics::sender_actor_stopped(self.core.chain(), Stage::Monitor.actor());
    }
}

impl Handler<Round> for CommitMonitor {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Round, _: &mut Self::Context) -> Self::Result {
        round_of(&self.core, Stage::Monitor)
    }
}
