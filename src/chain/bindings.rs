//! alloy bindings generated at compile time from the committed contract
//! artifacts (ABI + bytecode), so building needs no Solidity toolchain.
#![allow(clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    Groth16BatchVerifier,
    "contracts/artifacts/Groth16BatchVerifier.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    MinerDeposit,
    "contracts/artifacts/MinerDeposit.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    ZkPowRollup,
    "contracts/artifacts/ZkPowRollup.json"
);
