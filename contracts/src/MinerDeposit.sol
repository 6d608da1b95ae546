// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IMinerDeposit} from "./interfaces/IMinerDeposit.sol";
import {Owned} from "./utils/Owned.sol";

/// @title MinerDeposit
/// @notice One per chain. Miners bond ETH here; rollup contracts registered by the owner read the
///         bond (`depositOf`), credit rewards (`reward`) and slash it (`punish`).
///
/// Money in the contract is always exactly
///     totalStaked (active + pending withdrawals of all miners) + rewardPool + totalClaimable,
/// and every wei is accounted for by the cumulative counters:
///     totalDeposited = totalStaked + totalWithdrawn + totalSlashed
///     totalFunded + totalSlashed = rewardPool + totalClaimable + totalRewardsPaid.
/// Slashed ETH goes to the reward pool. Payments are pull-style (`withdraw`, `claimRewards`),
/// state is updated before ETH is sent.
contract MinerDeposit is IMinerDeposit, Owned {
    struct Account {
        uint128 active; // bonded deposit (counts for `depositOf`)
        uint128 pending; // requested withdrawal, still slashable
        uint64 unlockBlock; // first block at which `pending` can be withdrawn
        uint128 debt; // penalties that found no deposit; paid first from the next deposit
        uint128 claimable; // rewards credited and backed by ETH
        uint128 owed; // rewards credited while the pool was short; paid when the pool allows
    }

    /// @notice Blocks between `requestWithdrawal` and the earliest `withdraw`.
    uint64 public unbondingBlocks;

    mapping(address => Account) private accounts;
    mapping(address => bool) public isRollup;

    /// @notice ETH available for rewards, not yet credited to anyone.
    uint256 public rewardPool;
    /// @notice Sum of active and pending deposits.
    uint256 public totalStaked;
    /// @notice Sum of credited, unclaimed, backed rewards.
    uint256 public totalClaimable;
    /// @notice Sum of rewards credited without backing (pool was short).
    uint256 public totalOwed;
    /// @notice Sum of unpaid penalty debts.
    uint256 public totalDebt;

    // Cumulative counters (never decrease).
    uint256 public totalDeposited;
    uint256 public totalWithdrawn;
    uint256 public totalSlashed;
    uint256 public totalFunded;
    uint256 public totalRewardsPaid;

    event Deposited(address indexed miner, uint256 amount, uint256 debtPaid);
    event WithdrawalRequested(address indexed miner, uint256 amount, uint256 pending, uint64 unlockBlock);
    event Withdrawn(address indexed miner, uint256 amount);
    event RewardsFunded(address indexed funder, uint256 amount);
    event Rewarded(address indexed rollup, address indexed miner, uint256 amount, uint256 credited, uint256 owed);
    event Punished(address indexed rollup, address indexed miner, uint256 amount, uint256 taken, uint256 debt);
    event RewardsClaimed(address indexed miner, uint256 amount);
    event RollupRegistered(address indexed rollup);
    event RollupDeregistered(address indexed rollup);
    event UnbondingBlocksUpdated(uint64 unbondingBlocks);

    error NotRollup(address caller);
    error ZeroAmount();
    error InsufficientDeposit(uint256 available, uint256 requested);
    error NothingToWithdraw();
    error StillUnbonding(uint64 unlockBlock);
    error NothingToClaim();
    error TransferFailed();
    error AmountTooLarge();

    constructor(address initialOwner, uint64 unbondingBlocks_) Owned(initialOwner) {
        unbondingBlocks = unbondingBlocks_;
        emit UnbondingBlocksUpdated(unbondingBlocks_);
    }

    modifier onlyRollup() {
        if (!isRollup[msg.sender]) revert NotRollup(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- owner

    function registerRollup(address rollup) external onlyOwner {
        if (rollup == address(0)) revert ZeroAddress();
        isRollup[rollup] = true;
        emit RollupRegistered(rollup);
    }

    function deregisterRollup(address rollup) external onlyOwner {
        isRollup[rollup] = false;
        emit RollupDeregistered(rollup);
    }

    /// @notice Applies to withdrawal requests made after the change.
    function setUnbondingBlocks(uint64 blocks) external onlyOwner {
        unbondingBlocks = blocks;
        emit UnbondingBlocksUpdated(blocks);
    }

    // ---------------------------------------------------------------- miners

    /// @notice Bonds msg.value for msg.sender; an unpaid penalty debt is paid from it first.
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        if (msg.value > type(uint128).max) revert AmountTooLarge();
        Account storage acc = accounts[msg.sender];
        uint256 amount = msg.value;
        uint256 debtPaid = acc.debt;
        if (debtPaid > amount) debtPaid = amount;
        if (debtPaid != 0) {
            acc.debt -= uint128(debtPaid);
            totalDebt -= debtPaid;
            totalSlashed += debtPaid;
            rewardPool += debtPaid;
            amount -= debtPaid;
        }
        acc.active += uint128(amount);
        totalStaked += amount;
        totalDeposited += msg.value;
        emit Deposited(msg.sender, amount, debtPaid);
    }

    /// @notice Moves `amount` of the active deposit to the pending withdrawal and (re)starts the
    ///         unbonding delay for the whole pending amount. Pending ETH can still be slashed.
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage acc = accounts[msg.sender];
        if (amount > acc.active) revert InsufficientDeposit(acc.active, amount);
        acc.active -= uint128(amount);
        acc.pending += uint128(amount);
        uint64 unlock = uint64(block.number) + unbondingBlocks;
        acc.unlockBlock = unlock;
        emit WithdrawalRequested(msg.sender, amount, acc.pending, unlock);
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

    /// @notice Adds msg.value to the reward pool. Anyone may fund it.
    function fundRewards() external payable {
        if (msg.value == 0) revert ZeroAmount();
        rewardPool += msg.value;
        totalFunded += msg.value;
        emit RewardsFunded(msg.sender, msg.value);
    }

    /// @notice Pays msg.sender's credited rewards, first backing owed rewards from the pool as far
    ///         as it allows.
    function claimRewards() external {
        Account storage acc = accounts[msg.sender];
        _backOwed(acc);
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
    function reward(address miner, uint256 amount) external onlyRollup {
        if (amount > type(uint128).max) revert AmountTooLarge();
        Account storage acc = accounts[miner];
        uint256 credited = amount <= rewardPool ? amount : rewardPool;
        uint256 owed = amount - credited;
        if (credited != 0) {
            rewardPool -= credited;
            acc.claimable += uint128(credited);
            totalClaimable += credited;
        }
        if (owed != 0) {
            acc.owed += uint128(owed);
            totalOwed += owed;
        }
        emit Rewarded(msg.sender, miner, amount, credited, owed);
    }

    /// @inheritdoc IMinerDeposit
    function punish(address miner, uint256 amount) external onlyRollup returns (uint256 taken) {
        if (amount > type(uint128).max) revert AmountTooLarge();
        Account storage acc = accounts[miner];
        uint256 fromActive = amount <= acc.active ? amount : acc.active;
        uint256 rest = amount - fromActive;
        uint256 fromPending = rest <= acc.pending ? rest : acc.pending;
        uint256 debt = rest - fromPending;
        taken = fromActive + fromPending;
        if (fromActive != 0) acc.active -= uint128(fromActive);
        if (fromPending != 0) acc.pending -= uint128(fromPending);
        if (taken != 0) {
            totalStaked -= taken;
            totalSlashed += taken;
            rewardPool += taken;
        }
        if (debt != 0) {
            acc.debt += uint128(debt);
            totalDebt += debt;
        }
        emit Punished(msg.sender, miner, amount, taken, debt);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMinerDeposit
    function depositOf(address miner) external view returns (uint256) {
        return accounts[miner].active;
    }

    /// @notice The pending withdrawal and the first block it can be withdrawn at.
    function pendingWithdrawalOf(address miner) external view returns (uint256 amount, uint64 unlockBlock) {
        Account storage acc = accounts[miner];
        return (acc.pending, acc.unlockBlock);
    }

    /// @notice Credited rewards: backed (claimable now) and owed (waiting for the pool).
    function rewardsOf(address miner) external view returns (uint256 claimable, uint256 owed) {
        Account storage acc = accounts[miner];
        return (acc.claimable, acc.owed);
    }

    /// @notice Penalties that found no deposit.
    function debtOf(address miner) external view returns (uint256) {
        return accounts[miner].debt;
    }

    // ---------------------------------------------------------------- internal

    function _backOwed(Account storage acc) private {
        uint256 owed = acc.owed;
        if (owed == 0) return;
        uint256 pool = rewardPool;
        uint256 backed = owed <= pool ? owed : pool;
        if (backed == 0) return;
        rewardPool = pool - backed;
        acc.owed -= uint128(backed);
        totalOwed -= backed;
        acc.claimable += uint128(backed);
        totalClaimable += backed;
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
