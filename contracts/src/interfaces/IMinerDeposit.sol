// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice The part of MinerDeposit that rollup contracts use.
interface IMinerDeposit {
    /// @notice The miner's active (bonded) deposit, excluding a pending withdrawal.
    function depositOf(address miner) external view returns (uint256);

    /// @notice Credits `amount` of rewards to `miner` from the reward pool (records a shortfall as owed).
    function reward(address miner, uint256 amount) external;

    /// @notice Slashes up to `amount` from the miner's deposit and pending withdrawal; returns what was taken.
    function punish(address miner, uint256 amount) external returns (uint256 taken);
}
