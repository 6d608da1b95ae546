//! The dispatcher's sink: every accepted proof goes to the supervisor of
//! its sequence (and from there to the child that owns the task). A proof
//! for a sequence without a live supervisor is stored right here: the
//! result is in the database either way before the dispatcher counts the
//! task done.

use actix::prelude::*;

use super::{Registry, Wake};
use crate::aggregator::dispatcher::ProofAccepted;
use crate::aggregator::pipeline;
use crate::db::{self, Db};

pub struct ProofRouter {
    db: Db,
    registry: Registry,
    /// A proof stored without a supervisor: the generator starts one.
    wake: Recipient<Wake>,
}

impl ProofRouter {
    pub fn new(db: Db, registry: Registry, wake: Recipient<Wake>) -> Self {
        ProofRouter { db, registry, wake }
    }
}

impl Actor for ProofRouter {
    type Context = Context<Self>;
}

impl Handler<ProofAccepted> for ProofRouter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: ProofAccepted, _: &mut Self::Context) -> Self::Result {
        let key = (msg.task.rollup.clone(), msg.task.seq_height);
        let supervisor = self.registry.get(&key).map(|a| a.clone()).filter(|a| a.connected());
        let (db, wake) = (self.db.clone(), self.wake.clone());
        Box::pin(async move {
            if let Some(addr) = supervisor {
                if let Ok(result) = addr.send(msg.clone()).await {
                    return result;
                }
            }
            let result = store(&db, msg).await;
            if result.is_ok() {
                wake.do_send(Wake);
            }
            result
        })
    }
}

/// Persists an accepted proof (idempotent per task).
pub async fn store(db: &Db, msg: ProofAccepted) -> Result<(), String> {
    let task = msg.task.id.clone();
    db.run(move |c| pipeline::store_proof(c, &msg, db::now_ms())).await.map_err(|e| format!("{e:#}"))?;
    tracing::info!(task = %task, "proof stored");
    Ok(())
}
