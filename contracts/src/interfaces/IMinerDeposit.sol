// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice The part of MinerDeposit that rollup contracts use. Every penalty is taken from a bond
///         the rollup locked earlier, so a penalty can never find the deposit short.
interface IMinerDeposit {
    /// @notice The miner's active (bonded) deposit, locked part included, pending withdrawal excluded.
    function depositOf(address miner) external view returns (uint256);

    /// @notice Locks `bond` of the miner's free deposit for the calling rollup. Reverts unless the
    ///         active deposit is at least `minDeposit` and the free part at least `bond`.
    /// @return active the miner's active deposit (locked part included) at the time of the lock
    function lock(address miner, uint256 bond, uint256 minDeposit) external returns (uint256 active);

    /// @notice Releases `bond` the calling rollup locked for the miner.
    function unlock(address miner, uint256 bond) external;

    /// @notice Releases `bond` the calling rollup locked for the miner and takes `penalty` (<= bond)
    ///         from it: `settlerShare` is credited to `settler` as a reward, the rest goes to the
    ///         calling rollup's reward budget.
    function slash(address miner, uint256 bond, uint256 penalty, address settler, uint256 settlerShare) external;

    /// @notice Moves up to `amount` from the calling rollup's budget to its reserve for rewards.
    /// @return reserved what was moved (less than `amount` when the budget is short)
    function reserveReward(uint256 amount) external returns (uint256 reserved);

    /// @notice Credits `amount` of the calling rollup's reserve to the miner's claimable rewards.
    function reward(address miner, uint256 amount) external;
}
