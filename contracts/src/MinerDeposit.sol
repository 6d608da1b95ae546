// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IMinerDeposit} from "./interfaces/IMinerDeposit.sol";
import {Owned} from "./utils/Owned.sol";

/// @title MinerDeposit
/// @notice One per chain. Miners bond ETH here. A registered rollup locks part of a miner's free
///         deposit as a bond for every commit (`lock`), releases it for a valid proof (`unlock`)
///         and takes its penalties from it (`slash`), so penalties are enforced by construction:
///         the sum of a miner's locks over all rollups never exceeds its active deposit, and a
///         withdrawal only takes the unlocked part. Each rollup has its own reward budget, funded
///         by anyone for that rollup; a rollup pays rewards only from what it reserved from its own
///         budget, so one rollup cannot spend what was funded for another.
///
/// Money in the contract is always exactly
///     totalStaked (active + pending of all miners) + totalBudget + totalReserved + totalClaimable,
/// and every wei is accounted for by the cumulative counters:
///     totalDeposited = totalStaked + totalWithdrawn + totalSlashed
///     totalFunded + totalSlashed = totalBudget + totalReserved + totalClaimable + totalRewardsPaid.
/// Payments are pull-style (`withdraw`, `claimRewards`), state is updated before ETH is sent.
contract MinerDeposit is IMinerDeposit, Owned {
    /// Bounds of `unbondingBlocks`: at least one block, so that a withdrawal never happens in the
    /// block of its request, and at most about a year of 12 s blocks, so that the owner cannot trap
    /// deposits.
    uint64 public constant MIN_UNBONDING_BLOCKS = 1;
    uint64 public constant MAX_UNBONDING_BLOCKS = 2_628_000;

    struct Account {
        uint128 active; // bonded deposit, locked part included (counts for `depositOf`)
        uint128 locked; // sum of the bonds locked by rollups, <= active
        uint128 pending; // requested withdrawal (no longer bonded)
        uint64 unlockBlock; // first block at which `pending` can be withdrawn
        uint128 claimable; // rewards credited and backed by ETH
    }

    enum RollupStatus {
        Unknown,
        Active, // may lock bonds and reserve rewards
        Retired // may only release, slash and pay what it locked or reserved while active
    }

    struct Budget {
        uint128 free; // funded for the rollup, not reserved yet
        uint128 reserved; // reserved for sequences already posted
    }

    /// @notice Blocks between `requestWithdrawal` and the earliest `withdraw`.
    uint64 public unbondingBlocks;

    mapping(address => Account) private accounts;
    mapping(address => RollupStatus) public rollupStatus;
    mapping(address => Budget) private budgets;

    /// @notice Sum of active and pending deposits.
    uint256 public totalStaked;
    /// @notice Sum of the rollups' free budgets.
    uint256 public totalBudget;
    /// @notice Sum of the rollups' reserves.
    uint256 public totalReserved;
    /// @notice Sum of credited, unclaimed rewards.
    uint256 public totalClaimable;

    // Cumulative counters (never decrease).
    uint256 public totalDeposited;
    uint256 public totalWithdrawn;
    uint256 public totalSlashed;
    uint256 public totalFunded;
    uint256 public totalRewardsPaid;

    event Deposited(address indexed miner, uint256 amount);
    event WithdrawalRequested(address indexed miner, uint256 amount, uint256 pending, uint64 unlockBlock);
    event Withdrawn(address indexed miner, uint256 amount);
    event RewardsFunded(address indexed rollup, address indexed funder, uint256 amount);
    event RewardReserved(address indexed rollup, uint256 requested, uint256 reserved);
    event Rewarded(address indexed rollup, address indexed miner, uint256 amount);
    event Slashed(address indexed rollup, address indexed miner, uint256 amount, address settler, uint256 settlerShare);
    event RewardsClaimed(address indexed miner, uint256 amount);
    event RollupRegistered(address indexed rollup);
    event RollupRetired(address indexed rollup);
    event UnbondingBlocksUpdated(uint64 unbondingBlocks);

    error NotRollup(address caller);
    error ZeroAmount();
    error InsufficientDeposit(uint256 deposit, uint256 required);
    error InsufficientFreeDeposit(uint256 free, uint256 required);
    error NothingToWithdraw();
    error StillUnbonding(uint64 unlockBlock);
    error NothingToClaim();
    error TransferFailed();
    error AmountTooLarge();
    error InvalidUnbondingBlocks(uint64 blocks);
    error AlreadyRegistered(address rollup);
    error LockUnderflow(uint256 locked, uint256 released);
    error PenaltyAboveBond(uint256 penalty, uint256 bond);
    error ReserveExceeded(uint256 reserved, uint256 requested);

    constructor(address initialOwner, uint64 unbondingBlocks_) Owned(initialOwner) {
        _checkUnbonding(unbondingBlocks_);
        unbondingBlocks = unbondingBlocks_;
        emit UnbondingBlocksUpdated(unbondingBlocks_);
    }

    modifier onlyActiveRollup() {
        if (rollupStatus[msg.sender] != RollupStatus.Active) revert NotRollup(msg.sender);
        _;
    }

    /// Active or retired: what a rollup locked or reserved can always be settled.
    modifier onlyKnownRollup() {
        if (rollupStatus[msg.sender] == RollupStatus.Unknown) revert NotRollup(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- owner

    /// @notice Lets `rollup` lock miners' bonds and receive reward funds. Once only: a retired
    ///         rollup stays retired.
    function registerRollup(address rollup) external onlyOwner {
        if (rollup == address(0)) revert ZeroAddress();
        if (rollupStatus[rollup] != RollupStatus.Unknown) revert AlreadyRegistered(rollup);
        rollupStatus[rollup] = RollupStatus.Active;
        emit RollupRegistered(rollup);
    }

    /// @notice Stops `rollup` from locking new bonds and reserving rewards. It can still release and
    ///         slash the bonds it holds and pay the rewards it reserved, so retiring a rollup never
    ///         traps a miner's bond or cancels a penalty that is due.
    function retireRollup(address rollup) external onlyOwner {
        if (rollupStatus[rollup] != RollupStatus.Active) revert NotRollup(rollup);
        rollupStatus[rollup] = RollupStatus.Retired;
        emit RollupRetired(rollup);
    }

    /// @notice Applies to withdrawal requests made after the change; bounded by
    ///         [MIN_UNBONDING_BLOCKS, MAX_UNBONDING_BLOCKS].
    function setUnbondingBlocks(uint64 blocks) external onlyOwner {
        _checkUnbonding(blocks);
        unbondingBlocks = blocks;
        emit UnbondingBlocksUpdated(blocks);
    }

    // ---------------------------------------------------------------- miners

    /// @notice Bonds msg.value for msg.sender.
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Account storage acc = accounts[msg.sender];
        if (uint256(acc.active) + msg.value > type(uint128).max) revert AmountTooLarge();
        acc.active += uint128(msg.value);
        totalStaked += msg.value;
        totalDeposited += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Moves `amount` of the free (unlocked) deposit to the pending withdrawal and (re)starts
    ///         the unbonding delay for the whole pending amount.
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage acc = accounts[msg.sender];
        uint256 free = uint256(acc.active) - acc.locked;
        if (amount > free) revert InsufficientFreeDeposit(free, amount);
        acc.active -= uint128(amount);
        acc.pending += uint128(amount);
        uint64 unlockAt = uint64(block.number) + unbondingBlocks;
        acc.unlockBlock = unlockAt;
        emit WithdrawalRequested(msg.sender, amount, acc.pending, unlockAt);
    }

    /// @notice Pays out the whole pending withdrawal once the unbonding delay has passed.
    function withdraw() external {
        Account storage acc = accounts[msg.sender];
        uint256 amount = acc.pending;
        if (amount == 0) revert NothingToWithdraw();
        if (block.number < acc.unlockBlock) revert StillUnbonding(acc.unlockBlock);
        acc.pending = 0;
        totalStaked -= amount;
        totalWithdrawn += amount;
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Adds msg.value to the reward budget of `rollup` (an active rollup). Anyone may fund.
    function fundRewards(address rollup) external payable {
        if (msg.value == 0) revert ZeroAmount();
        if (rollupStatus[rollup] != RollupStatus.Active) revert NotRollup(rollup);
        Budget storage b = budgets[rollup];
        if (uint256(b.free) + msg.value > type(uint128).max) revert AmountTooLarge();
        b.free += uint128(msg.value);
        totalBudget += msg.value;
        totalFunded += msg.value;
        emit RewardsFunded(rollup, msg.sender, msg.value);
    }

    /// @notice Pays msg.sender's credited rewards.
    function claimRewards() external {
        Account storage acc = accounts[msg.sender];
        uint256 amount = acc.claimable;
        if (amount == 0) revert NothingToClaim();
        acc.claimable = 0;
        totalClaimable -= amount;
        totalRewardsPaid += amount;
        emit RewardsClaimed(msg.sender, amount);
        _send(msg.sender, amount);
    }

    // ---------------------------------------------------------------- rollups

    /// @inheritdoc IMinerDeposit
    function lock(address miner, uint256 bond, uint256 minDeposit) external onlyActiveRollup returns (uint256 active) {
        Account storage acc = accounts[miner];
        active = acc.active;
        uint256 locked = acc.locked;
        if (active < minDeposit) revert InsufficientDeposit(active, minDeposit);
        if (bond > active - locked) revert InsufficientFreeDeposit(active - locked, bond);
        // bond <= active - locked < 2^128: the cast and the sum cannot overflow.
        acc.locked = uint128(locked + bond);
    }

    /// @inheritdoc IMinerDeposit
    function unlock(address miner, uint256 bond) external onlyKnownRollup {
        Account storage acc = accounts[miner];
        if (bond > acc.locked) revert LockUnderflow(acc.locked, bond);
        acc.locked -= uint128(bond);
    }

    /// @inheritdoc IMinerDeposit
    function slash(address miner, uint256 bond, uint256 penalty, address settler, uint256 settlerShare)
        external
        onlyKnownRollup
    {
        if (penalty > bond) revert PenaltyAboveBond(penalty, bond);
        if (settlerShare > penalty) revert PenaltyAboveBond(settlerShare, penalty);
        Account storage acc = accounts[miner];
        if (bond > acc.locked) revert LockUnderflow(acc.locked, bond);
        // locked <= active, so the penalty (<= bond <= locked) is always there.
        acc.locked -= uint128(bond);
        acc.active -= uint128(penalty);
        totalStaked -= penalty;
        totalSlashed += penalty;
        if (settlerShare != 0) {
            accounts[settler].claimable += uint128(settlerShare);
            totalClaimable += settlerShare;
        }
        uint256 rest = penalty - settlerShare;
        if (rest != 0) {
            budgets[msg.sender].free += uint128(rest);
            totalBudget += rest;
        }
        emit Slashed(msg.sender, miner, penalty, settler, settlerShare);
    }

    /// @inheritdoc IMinerDeposit
    function reserveReward(uint256 amount) external onlyActiveRollup returns (uint256 reserved) {
        Budget storage b = budgets[msg.sender];
        reserved = amount <= b.free ? amount : b.free;
        if (reserved != 0) {
            b.free -= uint128(reserved);
            b.reserved += uint128(reserved);
            totalBudget -= reserved;
            totalReserved += reserved;
        }
        if (reserved != amount) emit RewardReserved(msg.sender, amount, reserved);
    }

    /// @inheritdoc IMinerDeposit
    function reward(address miner, uint256 amount) external onlyKnownRollup {
        Budget storage b = budgets[msg.sender];
        if (amount > b.reserved) revert ReserveExceeded(b.reserved, amount);
        b.reserved -= uint128(amount);
        totalReserved -= amount;
        accounts[miner].claimable += uint128(amount);
        totalClaimable += amount;
        emit Rewarded(msg.sender, miner, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMinerDeposit
    function depositOf(address miner) external view returns (uint256) {
        return accounts[miner].active;
    }

    /// @notice Sum of the bonds rollups hold locked for the miner.
    function lockedOf(address miner) external view returns (uint256) {
        return accounts[miner].locked;
    }

    /// @notice The part of the active deposit that can back a new commit or be withdrawn.
    function freeDepositOf(address miner) external view returns (uint256) {
        Account storage acc = accounts[miner];
        return uint256(acc.active) - acc.locked;
    }

    /// @notice The pending withdrawal and the first block it can be withdrawn at.
    function pendingWithdrawalOf(address miner) external view returns (uint256 amount, uint64 unlockBlock) {
        Account storage acc = accounts[miner];
        return (acc.pending, acc.unlockBlock);
    }

    /// @notice Credited rewards, claimable now.
    function rewardsOf(address miner) external view returns (uint256) {
        return accounts[miner].claimable;
    }

    /// @notice The rollup's reward budget: funded and not reserved, and reserved for posted sequences.
    function budgetOf(address rollup) external view returns (uint256 free, uint256 reserved) {
        Budget storage b = budgets[rollup];
        return (b.free, b.reserved);
    }

    /// @notice Whether `rollup` may lock bonds and reserve rewards.
    function isRollup(address rollup) external view returns (bool) {
        return rollupStatus[rollup] == RollupStatus.Active;
    }

    // ---------------------------------------------------------------- internal

    function _checkUnbonding(uint64 blocks) private pure {
        if (blocks < MIN_UNBONDING_BLOCKS || blocks > MAX_UNBONDING_BLOCKS) revert InvalidUnbondingBlocks(blocks);
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
