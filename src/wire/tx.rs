//! What a transaction of the sender does: the outbox stores it with every
//! row, the metrics label transactions with it.

super::text_enum! {
    /// What a transaction of the sender does.
    TxPurpose {
        /// `submitProofHash`: step 1, within T1.
        Commit => "commit",
        /// `verifyBatches`: step 2, within T2.
        Reveal => "reveal",
        /// `claimReward` after the window.
        Claim => "claim",
        /// `settleNoProof`: releases a bond whose window ended without a
        /// valid proof (ours, or another miner's for the settler share).
        Settle => "settle",
    }
}
