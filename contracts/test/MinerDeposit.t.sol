// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {Owned} from "../src/utils/Owned.sol";

contract RejectsEther {
    function depositTo(MinerDeposit d) external payable {
        d.deposit{value: msg.value}();
    }

    function requestAndWithdraw(MinerDeposit d, uint256 amount) external {
        d.requestWithdrawal(amount);
    }

    function withdraw(MinerDeposit d) external {
        d.withdraw();
    }
}

contract MinerDepositTest is Test {
    event Deposited(address indexed miner, uint256 amount, uint256 debtPaid);
    event WithdrawalRequested(address indexed miner, uint256 amount, uint256 pending, uint64 unlockBlock);
    event Withdrawn(address indexed miner, uint256 amount);
    event RewardsFunded(address indexed funder, uint256 amount);
    event Rewarded(address indexed rollup, address indexed miner, uint256 amount, uint256 credited, uint256 owed);
    event Punished(address indexed rollup, address indexed miner, uint256 amount, uint256 taken, uint256 debt);
    event RewardsClaimed(address indexed miner, uint256 amount);
    event RollupRegistered(address indexed rollup);
    event RollupDeregistered(address indexed rollup);

    MinerDeposit internal dep;
    address internal rollup = address(0x7011);
    address internal miner = address(0x111);
    uint64 internal constant UNBONDING = 50;

    function setUp() public {
        vm.roll(10);
        dep = new MinerDeposit(address(this), UNBONDING);
        dep.registerRollup(rollup);
        vm.deal(miner, 100 ether);
        vm.deal(address(this), 100 ether);
    }

    function _deposit(address m, uint256 amount) internal {
        vm.prank(m);
        dep.deposit{value: amount}();
    }

    function _checkBooks() internal view {
        assertEq(
            address(dep).balance,
            dep.totalStaked() + dep.rewardPool() + dep.totalClaimable(),
            "balance = staked + pool + claimable"
        );
        assertEq(
            dep.totalDeposited(), dep.totalStaked() + dep.totalWithdrawn() + dep.totalSlashed(), "deposits add up"
        );
        assertEq(
            dep.totalFunded() + dep.totalSlashed(),
            dep.rewardPool() + dep.totalClaimable() + dep.totalRewardsPaid(),
            "rewards add up"
        );
    }

    // ------------------------------------------------------------------ deposits and withdrawals

    function test_deposit() public {
        vm.expectEmit(true, false, false, true, address(dep));
        emit Deposited(miner, 3 ether, 0);
        _deposit(miner, 3 ether);
        assertEq(dep.depositOf(miner), 3 ether, "deposit");
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
        emit WithdrawalRequested(miner, 1 ether, 1 ether, uint64(block.number) + UNBONDING);
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
        emit Withdrawn(miner, 1 ether);
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
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientDeposit.selector, 1 ether, 2 ether));
        dep.requestWithdrawal(2 ether);
        vm.expectRevert(MinerDeposit.ZeroAmount.selector);
        dep.requestWithdrawal(0);
        vm.stopPrank();
    }

    function test_withdraw_transferFailure_reverts() public {
        RejectsEther r = new RejectsEther();
        r.depositTo{value: 1 ether}(dep);
        r.requestAndWithdraw(dep, 1 ether);
        vm.roll(block.number + UNBONDING);
        vm.expectRevert(MinerDeposit.TransferFailed.selector);
        r.withdraw(dep);
    }

    // ------------------------------------------------------------------ rewards

    function test_fundRewards() public {
        vm.expectEmit(true, false, false, true, address(dep));
        emit RewardsFunded(address(this), 5 ether);
        dep.fundRewards{value: 5 ether}();
        assertEq(dep.rewardPool(), 5 ether, "pool");
        vm.expectRevert(MinerDeposit.ZeroAmount.selector);
        dep.fundRewards();
    }

    function test_reward_fromPool() public {
        dep.fundRewards{value: 5 ether}();
        vm.expectEmit(true, true, false, true, address(dep));
        emit Rewarded(rollup, miner, 1 ether, 1 ether, 0);
        vm.prank(rollup);
        dep.reward(miner, 1 ether);
        (uint256 claimable, uint256 owed) = dep.rewardsOf(miner);
        assertEq(claimable, 1 ether, "claimable");
        assertEq(owed, 0, "owed");
        assertEq(dep.rewardPool(), 4 ether, "pool");
        uint256 before = miner.balance;
        vm.expectEmit(true, false, false, true, address(dep));
        emit RewardsClaimed(miner, 1 ether);
        vm.prank(miner);
        dep.claimRewards();
        assertEq(miner.balance, before + 1 ether, "paid");
        vm.prank(miner);
        vm.expectRevert(MinerDeposit.NothingToClaim.selector);
        dep.claimRewards();
        _checkBooks();
    }

    function test_reward_poolShort_owedThenBacked() public {
        dep.fundRewards{value: 1 ether}();
        vm.expectEmit(true, true, false, true, address(dep));
        emit Rewarded(rollup, miner, 3 ether, 1 ether, 2 ether);
        vm.prank(rollup);
        dep.reward(miner, 3 ether);
        (uint256 claimable, uint256 owed) = dep.rewardsOf(miner);
        assertEq(claimable, 1 ether, "claimable");
        assertEq(owed, 2 ether, "owed");
        assertEq(dep.totalOwed(), 2 ether, "total owed");
        dep.fundRewards{value: 1.5 ether}();
        uint256 before = miner.balance;
        vm.prank(miner);
        dep.claimRewards();
        assertEq(miner.balance, before + 2.5 ether, "paid what the pool allows");
        (claimable, owed) = dep.rewardsOf(miner);
        assertEq(owed, 0.5 ether, "still owed");
        assertEq(dep.rewardPool(), 0, "pool empty");
        _checkBooks();
    }

    function test_claim_onlyOwedAndEmptyPool_reverts() public {
        vm.prank(rollup);
        dep.reward(miner, 1 ether);
        vm.prank(miner);
        vm.expectRevert(MinerDeposit.NothingToClaim.selector);
        dep.claimRewards();
    }

    function test_onlyRollup() public {
        vm.startPrank(miner);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, miner));
        dep.reward(miner, 1);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, miner));
        dep.punish(miner, 1);
        vm.stopPrank();
        dep.deregisterRollup(rollup);
        vm.prank(rollup);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, rollup));
        dep.reward(miner, 1);
    }

    // ------------------------------------------------------------------ penalties

    function test_punish_activeThenPendingThenDebt() public {
        _deposit(miner, 3 ether);
        vm.prank(miner);
        dep.requestWithdrawal(2 ether);
        vm.expectEmit(true, true, false, true, address(dep));
        emit Punished(rollup, miner, 0.5 ether, 0.5 ether, 0);
        vm.prank(rollup);
        assertEq(dep.punish(miner, 0.5 ether), 0.5 ether, "taken from active");
        assertEq(dep.depositOf(miner), 0.5 ether, "active left");
        vm.prank(rollup);
        assertEq(dep.punish(miner, 1 ether), 1 ether, "active + pending");
        assertEq(dep.depositOf(miner), 0, "active empty");
        (uint256 pending,) = dep.pendingWithdrawalOf(miner);
        assertEq(pending, 1.5 ether, "pending reduced");
        vm.expectEmit(true, true, false, true, address(dep));
        emit Punished(rollup, miner, 2 ether, 1.5 ether, 0.5 ether);
        vm.prank(rollup);
        assertEq(dep.punish(miner, 2 ether), 1.5 ether, "what was there");
        assertEq(dep.debtOf(miner), 0.5 ether, "debt");
        assertEq(dep.totalSlashed(), 3 ether, "slashed");
        assertEq(dep.rewardPool(), 3 ether, "slashed ETH funds rewards");
        _checkBooks();
    }

    function test_deposit_paysDebtFirst() public {
        vm.prank(rollup);
        dep.punish(miner, 1 ether);
        assertEq(dep.debtOf(miner), 1 ether, "debt");
        vm.expectEmit(true, false, false, true, address(dep));
        emit Deposited(miner, 0.5 ether, 1 ether);
        _deposit(miner, 1.5 ether);
        assertEq(dep.debtOf(miner), 0, "debt paid");
        assertEq(dep.depositOf(miner), 0.5 ether, "rest bonded");
        assertEq(dep.rewardPool(), 1 ether, "debt to pool");
        vm.deal(address(0x222), 1 ether);
        _deposit(address(0x222), 1 ether);
        _checkBooks();
    }

    function test_deposit_partialDebt() public {
        vm.prank(rollup);
        dep.punish(miner, 2 ether);
        _deposit(miner, 0.5 ether);
        assertEq(dep.debtOf(miner), 1.5 ether, "debt left");
        assertEq(dep.depositOf(miner), 0, "nothing bonded");
        _checkBooks();
    }

    // ------------------------------------------------------------------ owner

    function test_owner() public {
        vm.expectEmit(true, false, false, true, address(dep));
        emit RollupRegistered(address(0x99));
        dep.registerRollup(address(0x99));
        assertTrue(dep.isRollup(address(0x99)), "registered");
        vm.expectEmit(true, false, false, true, address(dep));
        emit RollupDeregistered(address(0x99));
        dep.deregisterRollup(address(0x99));
        assertFalse(dep.isRollup(address(0x99)), "deregistered");
        vm.expectRevert(Owned.ZeroAddress.selector);
        dep.registerRollup(address(0));
        dep.setUnbondingBlocks(7);
        assertEq(dep.unbondingBlocks(), 7, "unbonding");
        vm.startPrank(miner);
        vm.expectRevert(Owned.NotOwner.selector);
        dep.registerRollup(miner);
        vm.expectRevert(Owned.NotOwner.selector);
        dep.deregisterRollup(rollup);
        vm.expectRevert(Owned.NotOwner.selector);
        dep.setUnbondingBlocks(1);
        vm.stopPrank();
        vm.expectRevert(Owned.ZeroAddress.selector);
        new MinerDeposit(address(0), 1);
    }

    function test_amountTooLarge_reverts() public {
        uint256 big = uint256(type(uint128).max) + 1;
        vm.startPrank(rollup);
        vm.expectRevert(MinerDeposit.AmountTooLarge.selector);
        dep.reward(miner, big);
        vm.expectRevert(MinerDeposit.AmountTooLarge.selector);
        dep.punish(miner, big);
        vm.stopPrank();
        vm.deal(miner, big);
        vm.prank(miner);
        vm.expectRevert(MinerDeposit.AmountTooLarge.selector);
        dep.deposit{value: big}();
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

    function testFuzz_punishNeverTakesMoreThanThere(uint96 active, uint96 pending, uint96 amount) public {
        vm.assume(active > 0);
        vm.assume(pending <= active);
        vm.deal(miner, active);
        _deposit(miner, active);
        if (pending > 0) {
            vm.prank(miner);
            dep.requestWithdrawal(pending);
        }
        vm.prank(rollup);
        uint256 taken = dep.punish(miner, amount);
        uint256 avail = uint256(active);
        assertEq(taken, amount < avail ? amount : avail, "taken");
        assertEq(dep.debtOf(miner), amount - taken, "debt");
        _checkBooks();
    }
}
