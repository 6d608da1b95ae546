// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {DepositBooks} from "./utils/DepositBooks.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {Owned} from "../src/utils/Owned.sol";

contract RejectsEther {
    function depositTo(MinerDeposit d) external payable {
        d.deposit{value: msg.value}();
    }

    function request(MinerDeposit d, uint256 amount) external {
        d.requestWithdrawal(amount);
    }

    function withdraw(MinerDeposit d) external {
        d.withdraw();
    }

    function claim(MinerDeposit d) external {
        d.claimRewards();
    }
}

/// MinerDeposit on its own, driven by plain addresses registered as rollups.
contract MinerDepositTest is DepositBooks {
    MinerDeposit internal dep;
    address internal rollup = address(0x7011);
    address internal rollup2 = address(0x7022);
    address internal miner = address(0x111);
    address internal settler = address(0x5E77);
    uint64 internal constant UNBONDING = 50;

    function setUp() public {
        vm.roll(10);
        dep = new MinerDeposit(address(this), UNBONDING);
        dep.registerRollup(rollup);
        dep.registerRollup(rollup2);
        vm.deal(miner, 100 ether);
        vm.deal(address(this), 100 ether);
    }

    function _deposit(address m, uint256 amount) internal {
        vm.prank(m);
        dep.deposit{value: amount}();
    }

    function _lock(address r, address m, uint256 bond, uint256 minDeposit) internal returns (uint256) {
        vm.prank(r);
        return dep.lock(m, bond, minDeposit);
    }

    function _checkBooks() internal view {
        _checkDepositIdentities(dep);
        (uint256 f1, uint256 r1) = dep.budgetOf(rollup);
        (uint256 f2, uint256 r2) = dep.budgetOf(rollup2);
        assertEq(f1 + f2, dep.totalBudget(), "sum of budgets");
        assertEq(r1 + r2, dep.totalReserved(), "sum of reserves");
        assertLe(dep.lockedOf(miner), dep.depositOf(miner), "locked <= active");
    }

    // ------------------------------------------------------------------ deposits and withdrawals

    function test_deposit() public {
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.Deposited(miner, 3 ether);
        _deposit(miner, 3 ether);
        assertEq(dep.depositOf(miner), 3 ether, "deposit");
        assertEq(dep.freeDepositOf(miner), 3 ether, "free");
        assertEq(dep.lockedOf(miner), 0, "locked");
        assertEq(dep.totalStaked(), 3 ether, "staked");
        _checkBooks();
    }

    function test_deposit_zero_reverts() public {
        vm.prank(miner);
        vm.expectRevert(MinerDeposit.ZeroAmount.selector);
        dep.deposit();
    }

    function test_withdrawal_flow() public {
        _deposit(miner, 3 ether);
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.WithdrawalRequested(miner, 1 ether, 1 ether, uint64(block.number) + UNBONDING);
        vm.prank(miner);
        dep.requestWithdrawal(1 ether);
        assertEq(dep.depositOf(miner), 2 ether, "active");
        (uint256 pending, uint64 unlock) = dep.pendingWithdrawalOf(miner);
        assertEq(pending, 1 ether, "pending");
        assertEq(unlock, block.number + UNBONDING, "unlock");
        vm.roll(unlock - 1);
        vm.prank(miner);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.StillUnbonding.selector, unlock));
        dep.withdraw();
        vm.roll(unlock);
        uint256 before = miner.balance;
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.Withdrawn(miner, 1 ether);
        vm.prank(miner);
        dep.withdraw();
        assertEq(miner.balance, before + 1 ether, "paid");
        (pending,) = dep.pendingWithdrawalOf(miner);
        assertEq(pending, 0, "no pending");
        vm.prank(miner);
        vm.expectRevert(MinerDeposit.NothingToWithdraw.selector);
        dep.withdraw();
        _checkBooks();
    }

    function test_requestWithdrawal_restartsDelay() public {
        _deposit(miner, 3 ether);
        vm.prank(miner);
        dep.requestWithdrawal(1 ether);
        vm.roll(block.number + 40);
        vm.prank(miner);
        dep.requestWithdrawal(1 ether);
        (uint256 pending, uint64 unlock) = dep.pendingWithdrawalOf(miner);
        assertEq(pending, 2 ether, "pending accumulates");
        assertEq(unlock, block.number + UNBONDING, "delay restarted");
    }

    function test_requestWithdrawal_reverts() public {
        _deposit(miner, 1 ether);
        vm.startPrank(miner);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 1 ether, 2 ether));
        dep.requestWithdrawal(2 ether);
        vm.expectRevert(MinerDeposit.ZeroAmount.selector);
        dep.requestWithdrawal(0);
        vm.stopPrank();
    }

    function test_requestWithdrawal_onlyFreePart() public {
        _deposit(miner, 3 ether);
        _lock(rollup, miner, 1 ether, 1 ether);
        _lock(rollup2, miner, 0.5 ether, 1 ether);
        assertEq(dep.freeDepositOf(miner), 1.5 ether, "free");
        vm.prank(miner);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 1.5 ether, 1.5 ether + 1));
        dep.requestWithdrawal(1.5 ether + 1);
        vm.prank(miner);
        dep.requestWithdrawal(1.5 ether);
        assertEq(dep.depositOf(miner), 1.5 ether, "active = locked");
        assertEq(dep.freeDepositOf(miner), 0, "nothing free");
        _checkBooks();
    }

    function test_withdraw_transferFailure_reverts() public {
        RejectsEther r = new RejectsEther();
        r.depositTo{value: 1 ether}(dep);
        r.request(dep, 1 ether);
        vm.roll(block.number + UNBONDING);
        vm.expectRevert(MinerDeposit.TransferFailed.selector);
        r.withdraw(dep);
    }

    // ------------------------------------------------------------------ budgets and rewards

    function test_fundRewards() public {
        vm.expectEmit(true, true, false, true, address(dep));
        emit MinerDeposit.RewardsFunded(rollup, address(this), 5 ether);
        dep.fundRewards{value: 5 ether}(rollup);
        (uint256 free, uint256 reserved) = dep.budgetOf(rollup);
        assertEq(free, 5 ether, "budget");
        assertEq(reserved, 0, "reserved");
        (free,) = dep.budgetOf(rollup2);
        assertEq(free, 0, "other rollup");
        vm.expectRevert(MinerDeposit.ZeroAmount.selector);
        dep.fundRewards(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, address(0x99)));
        dep.fundRewards{value: 1}(address(0x99));
        _checkBooks();
    }

    function test_reserveAndReward() public {
        dep.fundRewards{value: 5 ether}(rollup);
        vm.prank(rollup);
        assertEq(dep.reserveReward(2 ether), 2 ether, "reserved in full");
        (uint256 free, uint256 reserved) = dep.budgetOf(rollup);
        assertEq(free, 3 ether, "free");
        assertEq(reserved, 2 ether, "reserved");
        vm.expectEmit(true, true, false, true, address(dep));
        emit MinerDeposit.Rewarded(rollup, miner, 1 ether);
        vm.prank(rollup);
        dep.reward(miner, 1 ether);
        assertEq(dep.rewardsOf(miner), 1 ether, "claimable");
        (, reserved) = dep.budgetOf(rollup);
        assertEq(reserved, 1 ether, "reserve spent");
        vm.prank(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.ReserveExceeded.selector, 1 ether, 1 ether + 1));
        dep.reward(miner, 1 ether + 1);
        uint256 before = miner.balance;
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RewardsClaimed(miner, 1 ether);
        vm.prank(miner);
        dep.claimRewards();
        assertEq(miner.balance, before + 1 ether, "paid");
        vm.prank(miner);
        vm.expectRevert(MinerDeposit.NothingToClaim.selector);
        dep.claimRewards();
        _checkBooks();
    }

    function test_reserve_shortBudget() public {
        dep.fundRewards{value: 1 ether}(rollup);
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RewardReserved(rollup, 3 ether, 1 ether);
        vm.prank(rollup);
        assertEq(dep.reserveReward(3 ether), 1 ether, "what the budget had");
        vm.prank(rollup);
        assertEq(dep.reserveReward(1), 0, "empty");
        vm.prank(rollup);
        assertEq(dep.reserveReward(0), 0, "zero");
        _checkBooks();
    }

    /// A rollup spends only what it reserved from its own budget.
    function test_budgets_separatePerRollup() public {
        dep.fundRewards{value: 5 ether}(rollup);
        vm.prank(rollup);
        dep.reserveReward(5 ether);
        vm.prank(rollup2);
        assertEq(dep.reserveReward(1 ether), 0, "rollup2 has no budget");
        vm.prank(rollup2);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.ReserveExceeded.selector, 0, 1));
        dep.reward(miner, 1);
        (uint256 free, uint256 reserved) = dep.budgetOf(rollup);
        assertEq(free + reserved, 5 ether, "rollup's money intact");
        _checkBooks();
    }

    function test_claim_transferFailure_reverts() public {
        RejectsEther r = new RejectsEther();
        dep.fundRewards{value: 1 ether}(rollup);
        vm.startPrank(rollup);
        dep.reserveReward(1 ether);
        dep.reward(address(r), 1 ether);
        vm.stopPrank();
        vm.expectRevert(MinerDeposit.TransferFailed.selector);
        r.claim(dep);
    }

    // ------------------------------------------------------------------ locks and slashes

    function test_lock() public {
        _deposit(miner, 2 ether);
        assertEq(_lock(rollup, miner, 0.5 ether, 1 ether), 2 ether, "returns the active deposit");
        assertEq(dep.lockedOf(miner), 0.5 ether, "locked");
        assertEq(dep.freeDepositOf(miner), 1.5 ether, "free");
        assertEq(dep.depositOf(miner), 2 ether, "a lock takes nothing");
        assertEq(dep.lockedOf(settler), 0, "only the miner's account is locked");
        assertEq(_lock(rollup2, miner, 1.5 ether, 2 ether), 2 ether, "locks of two rollups add up");
        assertEq(dep.lockedOf(miner), 2 ether, "all locked");
        vm.prank(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, 1));
        dep.lock(miner, 1, 1);
        vm.prank(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientDeposit.selector, 2 ether, 2 ether + 1));
        dep.lock(miner, 0, 2 ether + 1);
        assertEq(_lock(rollup, miner, 0, 2 ether), 2 ether, "zero bond: minimum only");
        _checkBooks();
    }

    function test_unlock() public {
        _deposit(miner, 2 ether);
        _lock(rollup, miner, 1 ether, 1 ether);
        vm.prank(rollup);
        dep.unlock(miner, 0.4 ether);
        assertEq(dep.lockedOf(miner), 0.6 ether, "partly released");
        vm.prank(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.LockUnderflow.selector, 0.6 ether, 0.6 ether + 1));
        dep.unlock(miner, 0.6 ether + 1);
        vm.prank(rollup);
        dep.unlock(miner, 0.6 ether);
        assertEq(dep.lockedOf(miner), 0, "released");
        assertEq(dep.freeDepositOf(miner), 2 ether, "all free again");
        assertEq(dep.depositOf(miner), 2 ether, "nothing taken");
    }

    function test_slash() public {
        _deposit(miner, 2 ether);
        dep.fundRewards{value: 1 ether}(rollup);
        _lock(rollup, miner, 1 ether, 1 ether);
        vm.expectEmit(true, true, false, true, address(dep));
        emit MinerDeposit.Slashed(rollup, miner, 0.6 ether, settler, 0.06 ether);
        vm.prank(rollup);
        dep.slash(miner, 1 ether, 0.6 ether, settler, 0.06 ether);
        assertEq(dep.depositOf(miner), 1.4 ether, "penalty taken");
        assertEq(dep.lockedOf(miner), 0, "bond released");
        assertEq(dep.rewardsOf(settler), 0.06 ether, "settler share");
        (uint256 free,) = dep.budgetOf(rollup);
        assertEq(free, 1 ether + 0.54 ether, "rest to the slashing rollup's budget");
        (free,) = dep.budgetOf(rollup2);
        assertEq(free, 0, "not to another rollup");
        assertEq(dep.totalSlashed(), 0.6 ether, "slashed");
        vm.prank(settler);
        dep.claimRewards();
        assertEq(settler.balance, 0.06 ether, "settler paid");
        _checkBooks();
    }

    function test_slash_reverts() public {
        _deposit(miner, 2 ether);
        _lock(rollup, miner, 1 ether, 1 ether);
        vm.startPrank(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.PenaltyAboveBond.selector, 1 ether + 1, 1 ether));
        dep.slash(miner, 1 ether, 1 ether + 1, settler, 0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.PenaltyAboveBond.selector, 2, 1));
        dep.slash(miner, 1 ether, 1, settler, 2); // share above the penalty
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.LockUnderflow.selector, 1 ether, 2 ether));
        dep.slash(miner, 2 ether, 1 ether, settler, 0); // more than is locked
        vm.stopPrank();
    }

    function test_slash_neverTouchesPendingWithdrawal() public {
        _deposit(miner, 3 ether);
        _lock(rollup, miner, 1 ether, 1 ether);
        vm.prank(miner);
        dep.requestWithdrawal(2 ether);
        vm.prank(rollup);
        dep.slash(miner, 1 ether, 1 ether, address(0), 0);
        (uint256 pending,) = dep.pendingWithdrawalOf(miner);
        assertEq(pending, 2 ether, "pending intact");
        assertEq(dep.depositOf(miner), 0, "the bond was the whole active deposit");
        _checkBooks();
    }

    // ------------------------------------------------------------------ access control

    function test_onlyRollup() public {
        address stranger = address(0x5757);
        vm.startPrank(stranger);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, stranger));
        dep.lock(miner, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, stranger));
        dep.unlock(miner, 0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, stranger));
        dep.slash(miner, 0, 0, stranger, 0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, stranger));
        dep.reserveReward(1);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, stranger));
        dep.reward(miner, 0);
        vm.stopPrank();
    }

    /// A retired rollup locks and reserves nothing new, and still releases, slashes and pays what
    /// it locked or reserved.
    function test_retiredRollup() public {
        _deposit(miner, 2 ether);
        dep.fundRewards{value: 1 ether}(rollup);
        _lock(rollup, miner, 1 ether, 1 ether);
        vm.prank(rollup);
        dep.reserveReward(0.5 ether);
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RollupRetired(rollup);
        dep.retireRollup(rollup);
        assertFalse(dep.isRollup(rollup), "not active");
        vm.startPrank(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, rollup));
        dep.lock(miner, 0.1 ether, 0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, rollup));
        dep.reserveReward(0.1 ether);
        dep.unlock(miner, 0.5 ether);
        dep.slash(miner, 0.5 ether, 0.2 ether, address(0), 0);
        dep.reward(miner, 0.5 ether);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, rollup));
        dep.fundRewards{value: 1}(rollup);
        assertEq(dep.lockedOf(miner), 0, "all released");
        assertEq(dep.depositOf(miner), 1.8 ether, "slashed");
        assertEq(dep.rewardsOf(miner), 0.5 ether, "paid from the reserve");
        _checkBooks();
    }

    // ------------------------------------------------------------------ owner

    function test_owner() public {
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RollupRegistered(address(0x99));
        dep.registerRollup(address(0x99));
        assertTrue(dep.isRollup(address(0x99)), "registered");
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.AlreadyRegistered.selector, address(0x99)));
        dep.registerRollup(address(0x99));
        dep.retireRollup(address(0x99));
        assertFalse(dep.isRollup(address(0x99)), "retired");
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.AlreadyRegistered.selector, address(0x99)));
        dep.registerRollup(address(0x99));
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, address(0x98)));
        dep.retireRollup(address(0x98));
        vm.expectRevert(Owned.ZeroAddress.selector);
        dep.registerRollup(address(0));
        vm.startPrank(miner);
        vm.expectRevert(Owned.NotOwner.selector);
        dep.registerRollup(miner);
        vm.expectRevert(Owned.NotOwner.selector);
        dep.retireRollup(rollup);
        vm.expectRevert(Owned.NotOwner.selector);
        dep.setUnbondingBlocks(1);
        vm.stopPrank();
        vm.expectRevert(Owned.ZeroAddress.selector);
        new MinerDeposit(address(0), 1);
    }

    function test_unbondingBlocks_bounded() public {
        uint64 max = dep.MAX_UNBONDING_BLOCKS();
        assertEq(max, 2_628_000, "about a year");
        assertEq(dep.MIN_UNBONDING_BLOCKS(), 1, "at least a block");
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InvalidUnbondingBlocks.selector, 0));
        dep.setUnbondingBlocks(0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InvalidUnbondingBlocks.selector, max + 1));
        dep.setUnbondingBlocks(max + 1);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InvalidUnbondingBlocks.selector, type(uint64).max));
        dep.setUnbondingBlocks(type(uint64).max);
        vm.expectEmit(false, false, false, true, address(dep));
        emit MinerDeposit.UnbondingBlocksUpdated(max);
        dep.setUnbondingBlocks(max);
        assertEq(dep.unbondingBlocks(), max, "max");
        dep.setUnbondingBlocks(1);
        assertEq(dep.unbondingBlocks(), 1, "min");
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InvalidUnbondingBlocks.selector, 0));
        new MinerDeposit(address(this), 0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InvalidUnbondingBlocks.selector, max + 1));
        new MinerDeposit(address(this), max + 1);
    }

    /// A change applies to requests made afterwards; a pending request keeps its unlock block.
    function test_unbondingBlocks_changeAppliesToLaterRequests() public {
        _deposit(miner, 2 ether);
        vm.prank(miner);
        dep.requestWithdrawal(1 ether);
        (, uint64 unlock) = dep.pendingWithdrawalOf(miner);
        dep.setUnbondingBlocks(1000);
        (, uint64 unlockAfter) = dep.pendingWithdrawalOf(miner);
        assertEq(unlockAfter, unlock, "pending request unchanged");
        vm.roll(unlock);
        vm.prank(miner);
        dep.withdraw();
        vm.prank(miner);
        dep.requestWithdrawal(1 ether);
        (, unlock) = dep.pendingWithdrawalOf(miner);
        assertEq(unlock, block.number + 1000, "new delay");
    }

    function test_amountTooLarge_reverts() public {
        uint256 big = uint256(type(uint128).max) + 1;
        vm.deal(miner, big);
        vm.prank(miner);
        vm.expectRevert(MinerDeposit.AmountTooLarge.selector);
        dep.deposit{value: big}();
        vm.deal(address(this), big);
        vm.expectRevert(MinerDeposit.AmountTooLarge.selector);
        dep.fundRewards{value: big}(rollup);
    }

    function test_transferOwnership() public {
        vm.expectRevert(Owned.ZeroAddress.selector);
        dep.transferOwnership(address(0));
        dep.transferOwnership(miner);
        assertEq(dep.owner(), miner, "new owner");
        vm.expectRevert(Owned.NotOwner.selector);
        dep.registerRollup(address(0x99));
        vm.prank(miner);
        dep.registerRollup(address(0x99));
    }

    // ------------------------------------------------------------------ fuzz

    /// Random locks by two rollups, withdrawals and slashes: a slash takes exactly the penalty
    /// (never more than the bond), locks never exceed the active deposit, the books balance.
    function testFuzz_locksAndSlashes(uint96 amount, uint96 bond1, uint96 bond2, uint96 penalty, uint96 take, uint8 share)
        public
    {
        uint256 a = bound(amount, 1, 50 ether);
        _deposit(miner, a);
        uint256 b1 = bound(bond1, 0, a);
        _lock(rollup, miner, b1, 0);
        uint256 b2 = bound(bond2, 0, a);
        vm.prank(rollup2);
        (bool ok,) = address(dep).call(abi.encodeCall(MinerDeposit.lock, (miner, b2, 0)));
        assertEq(ok, b2 <= a - b1, "second lock iff free");
        if (!ok) b2 = 0;
        uint256 t = bound(take, 1, a);
        vm.prank(miner);
        (ok,) = address(dep).call(abi.encodeCall(MinerDeposit.requestWithdrawal, (t)));
        assertEq(ok, t <= a - b1 - b2, "withdrawal iff free");
        uint256 activeBefore = dep.depositOf(miner);
        uint256 p = bound(penalty, 0, b1);
        uint256 s = p * bound(share, 0, 100) / 100;
        vm.prank(rollup);
        dep.slash(miner, b1, p, settler, s);
        assertEq(dep.depositOf(miner), activeBefore - p, "exactly the penalty");
        assertEq(dep.lockedOf(miner), b2, "rollup2's lock remains");
        assertLe(dep.lockedOf(miner), dep.depositOf(miner), "locked <= active");
        assertEq(dep.rewardsOf(settler), s, "share");
        _checkBooks();
    }
}
