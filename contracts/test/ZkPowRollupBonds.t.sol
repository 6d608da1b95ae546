// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RollupTestBase} from "./utils/RollupTestBase.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";

/// Bonded commits (lock, unlock, slash amounts, settler share, stale-commit settlement), reward
/// weight fixed at commit, terms fixed per sequence, safe parameters, per-rollup reward budgets and
/// retired rollups.
contract ZkPowRollupBondsTest is RollupTestBase {
    // ================================================================== bond amounts

    function test_bond_lockedAtCommit() public {
        (uint64 init, uint64 fin) = _post(1);
        assertEq(dep.lockedOf(alice), 0, "alice: nothing locked");
        assertEq(dep.lockedOf(bob), 0, "bob: nothing locked");
        _commit(alice, init, fin, hex"01");
        _commit(bob, init, fin, hex"02");
        assertEq(dep.lockedOf(alice), BOND, "alice");
        assertEq(dep.lockedOf(bob), BOND, "bob");
        assertEq(dep.freeDepositOf(bob), 6 ether - BOND, "bob free");
        assertEq(dep.lockedOf(carol), 0, "a miner who did not commit locks nothing");
        assertEq(dep.depositOf(bob), 6 ether, "a lock takes nothing");
        _checkBooks();
    }

    function test_bond_releasedByValidReveal() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, p), "valid");
        assertEq(dep.lockedOf(alice), 0, "released");
        assertEq(dep.depositOf(alice), 2 ether, "nothing taken");
        assertEq(dep.freeDepositOf(alice), 2 ether, "all free again");
        assertEq(dep.totalSlashed(), 0, "no slash");
    }

    /// Wrong proof: penaltyWrongProof out of the bond, the rest released, no settler.
    function test_bond_slashedByWrongProof_exactAmounts() public {
        rollup.setAmounts(MIN_DEPOSIT, REWARD, 0.2 ether, 0.7 ether); // bond = 0.7, wrong = 0.2
        (uint64 init, uint64 fin) = _post(1);
        _commit(bob, init, fin, hex"01");
        assertEq(dep.lockedOf(bob), 0.7 ether, "bond = max(penalties)");
        _rollToReveal(init);
        (uint256 budgetBefore,) = _budget(rollup);
        assertFalse(_reveal(bob, init, fin, hex"02"), "wrong hash");
        assertEq(dep.depositOf(bob), 6 ether - 0.2 ether, "penaltyWrongProof taken");
        assertEq(dep.lockedOf(bob), 0, "whole bond released");
        assertEq(dep.totalSlashed(), 0.2 ether, "slashed");
        (uint256 budgetAfter,) = _budget(rollup);
        assertEq(budgetAfter, budgetBefore + 0.2 ether, "to the budget");
        _checkBooks();
    }

    /// No proof, settled by a third party: penaltyNoProof out of the bond, SETTLER_SHARE_PERCENT of it
    /// to the settler (claimable), the rest to the rollup's budget.
    function test_bond_slashedByNoProof_settlerShare() public {
        rollup.setAmounts(MIN_DEPOSIT, REWARD, 0.7 ether, 0.45 ether); // bond = 0.7, no-proof = 0.45
        (uint64 init, uint64 fin) = _post(1);
        _commit(bob, init, fin, hex"01");
        _rollToEnd(init);
        (uint256 budgetBefore,) = _budget(rollup);
        vm.prank(dave);
        rollup.settleNoProof(init, bob);
        assertEq(dep.depositOf(bob), 6 ether - 0.45 ether, "penaltyNoProof taken");
        assertEq(dep.lockedOf(bob), 0, "bond released");
        assertEq(dep.rewardsOf(dave), 0.045 ether, "10% to the settler");
        (uint256 budgetAfter,) = _budget(rollup);
        assertEq(budgetAfter, budgetBefore + 0.405 ether, "90% to the budget");
        uint256 before = dave.balance;
        vm.prank(dave);
        dep.claimRewards();
        assertEq(dave.balance, before + 0.045 ether, "settler paid");
        _checkBooks();
    }

    function testFuzz_settlerShare(uint96 noProofRaw, bool bySelf) public {
        uint128 noProof = uint128(bound(noProofRaw, 0, MIN_DEPOSIT));
        rollup.setAmounts(MIN_DEPOSIT, REWARD, 0, noProof);
        (uint64 init, uint64 fin) = _post(1);
        _commit(bob, init, fin, hex"01");
        _rollToEnd(init);
        address settler = bySelf ? bob : dave;
        uint256 share = bySelf ? 0 : uint256(noProof) * 10 / 100;
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Punished(init, bob, ZkPowRollup.PunishReason.NoProof, noProof, settler, share);
        vm.prank(settler);
        rollup.settleNoProof(init, bob);
        assertEq(dep.depositOf(bob), 6 ether - noProof, "full penalty");
        assertEq(dep.rewardsOf(settler), share, "share");
        assertEq(dep.lockedOf(bob), 0, "released");
        _checkBooks();
    }

    /// The miner's own next commit on the sequence settles its stale commit (no share), then locks
    /// a new bond.
    function test_bond_staleCommitSettledByOwnNextCommit() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(carol, init, fin, hex"01");
        _rollToEnd(init);
        assertEq(dep.lockedOf(carol), BOND, "still locked after the end");
        // carol: 1 ether - 0.3 = 0.7 < minDeposit: the new commit cannot be backed, the whole call
        // reverts (and the stale commit stays unsettled)
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientDeposit.selector, 0.7 ether, MIN_DEPOSIT));
        rollup.submitProofHash(init, fin, bytes32(uint256(2)));
        assertEq(dep.lockedOf(carol), BOND, "unchanged");
        _fundMiner(carol, 0.3 ether);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.WindowReset(init, 1, 2);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Punished(init, carol, ZkPowRollup.PunishReason.NoProof, PENALTY_NO_PROOF, carol, 0);
        vm.expectEmit(true, true, false, true, address(dep));
        emit MinerDeposit.Slashed(address(rollup), carol, PENALTY_NO_PROOF, carol, 0);
        _commit(carol, init, fin, hex"02");
        assertEq(dep.depositOf(carol), 1 ether, "1.3 - 0.3");
        assertEq(dep.lockedOf(carol), BOND, "one bond: the new commit's");
        assertEq(dep.rewardsOf(carol), 0, "no share for oneself");
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, carol);
        assertEq(ci.windowId, 2, "window 2");
        assertFalse(ci.settled, "new commit open");
        _checkBooks();
    }

    // ================================================================== weight

    /// The reward weight is the active deposit at commit: deposits and withdrawals afterwards do
    /// not change it.
    function test_weight_fixedAtCommit() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory pa = _proof(init, fin, alice);
        bytes memory pb = _proof(init, fin, bob);
        _commit(alice, init, fin, pa); // 2 ether
        _commit(bob, init, fin, pb); // 6 ether
        _fundMiner(alice, 30 ether); // after her commit
        vm.prank(bob);
        dep.requestWithdrawal(5 ether); // only the free part can go
        assertEq(rollup.commitOf(init, alice).weight, 2 ether, "alice");
        assertEq(rollup.commitOf(init, bob).weight, 6 ether, "bob");
        _rollToReveal(init);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.ProofAccepted(init, alice, 1, 2 ether, true);
        assertTrue(_reveal(alice, init, fin, pa), "alice");
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.ProofAccepted(init, bob, 1, 6 ether, false);
        assertTrue(_reveal(bob, init, fin, pb), "bob");
        _rollToEnd(init);
        vm.prank(alice);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 2 / 8, "alice 2/8");
        vm.prank(bob);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 6 / 8, "bob 6/8");
    }

    function test_weight_gweiGranularity() public {
        (uint64 init, uint64 fin) = _post(1);
        _fundMiner(dave, 1 ether + 1 gwei - 1);
        _commit(dave, init, fin, hex"01");
        assertEq(rollup.commitOf(init, dave).weight, 1 ether, "rounded down to gwei");
    }

    // ================================================================== terms per sequence

    function test_terms_fixedPerSequence() public {
        (uint64 s1,) = _post(1);
        rollup.setAmounts(3 ether, 1 ether, 2 ether, 1 ether);
        rollup.setWindowLengths(5, 6);
        (uint64 s2,) = _post(1);
        _checkTermsViews(s1, s2);

        // sequence 1: old minimum and bond, even though the change came before the commit
        _commit(alice, s1, s1, hex"01");
        assertEq(dep.lockedOf(alice), BOND, "old bond");
        // sequence 2: new minimum (alice has 2 ether) and bond
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientDeposit.selector, 2 ether, 3 ether));
        rollup.submitProofHash(s2, s2, bytes32(uint256(1)));
        _commit(bob, s2, s2, hex"02");
        assertEq(dep.lockedOf(bob), 2 ether, "new bond");
        (, uint64 ce2,, uint64 re2) = _statusOn(rollup, s2);
        assertEq(ce2, block.number + 5, "s2 uses its own T1");
        assertEq(re2, 0, "s2 awaits s1");

        // later changes touch neither
        rollup.setAmounts(1 ether, 0, 0.1 ether, 0.1 ether);
        rollup.setWindowLengths(1, 1);
        assertEq(rollup.currentTermsId(), 5, "five sets of terms");
        _rollToEnd(s1);
        rollup.settleNoProof(s1, alice);
        assertEq(dep.depositOf(alice), 2 ether - PENALTY_NO_PROOF, "s1 penalty as posted");
        _verifyInSecondWindow(s1);
        _checkLaterTerms(s2);
    }

    function _checkTermsViews(uint64 s1, uint64 s2) internal view {
        ZkPowRollup.SequenceTerms memory a = rollup.termsOfSequence(s1);
        assertEq(a.t1, T1, "s1 T1");
        assertEq(a.t2, T2, "s1 T2");
        assertEq(a.minDeposit, MIN_DEPOSIT, "s1 min");
        assertEq(a.bond, BOND, "s1 bond");
        assertEq(a.penaltyWrongProof, PENALTY_WRONG, "s1 wrong");
        assertEq(a.penaltyNoProof, PENALTY_NO_PROOF, "s1 no proof");
        ZkPowRollup.SequenceTerms memory b = rollup.termsOfSequence(s2);
        assertEq(b.t1, 5, "s2 T1");
        assertEq(b.t2, 6, "s2 T2");
        assertEq(b.minDeposit, 3 ether, "s2 min");
        assertEq(b.bond, 2 ether, "s2 bond");
        assertEq(b.penaltyWrongProof, 2 ether, "s2 wrong");
        assertEq(b.penaltyNoProof, 1 ether, "s2 no proof");
        (,, uint128 r1,) = rollup.verification(s1);
        (,, uint128 r2,) = rollup.verification(s2);
        assertEq(r1, REWARD, "s1 reward");
        assertEq(r2, 1 ether, "s2 reward");
    }

    /// s1 is unverified after its first window: carol verifies it in a second one, still with T1.
    function _verifyInSecondWindow(uint64 s1) internal {
        bytes memory p1 = _proof(s1, s1, carol);
        _commit(carol, s1, s1, p1);
        (, uint64 ce1,,) = _statusOn(rollup, s1);
        assertEq(ce1, block.number + T1, "s1's second window still uses T1");
        _rollToReveal(s1);
        assertTrue(_reveal(carol, s1, s1, p1), "s1 verified");
    }

    function _checkLaterTerms(uint64 s2) internal {
        uint256 v = block.number;
        (,, uint64 rs2, uint64 re2) = _statusOn(rollup, s2);
        assertEq(rs2, v, "s2 reveal from the verification");
        assertEq(re2, v + 6, "s2 uses its own T2");
        assertFalse(_reveal(bob, s2, s2, hex"03"), "wrong hash");
        assertEq(dep.depositOf(bob), 6 ether - 2 ether, "s2 wrong-proof penalty as posted");
    }

    // ================================================================== safe parameters

    function test_safeParameters_amounts() public {
        vm.expectRevert(ZkPowRollup.UnsafeAmounts.selector);
        rollup.setAmounts(0, REWARD, 0, 0); // no minimum deposit
        vm.expectRevert(ZkPowRollup.UnsafeAmounts.selector);
        rollup.setAmounts(1 ether, REWARD, 1 ether + 1, 0); // wrong-proof penalty above the minimum
        vm.expectRevert(ZkPowRollup.UnsafeAmounts.selector);
        rollup.setAmounts(1 ether, REWARD, 0, 1 ether + 1); // no-proof penalty above the minimum
        vm.expectRevert(ZkPowRollup.UnsafeAmounts.selector);
        rollup.setAmounts(uint128(type(uint96).max) + 1, REWARD, 0, 0); // does not fit 96 bits
        assertEq(rollup.currentTermsId(), 1, "nothing changed");
        // the edges are fine
        rollup.setAmounts(1 ether, REWARD, 1 ether, 1 ether);
        assertEq(rollup.bond(), 1 ether, "bond = minimum");
        rollup.setAmounts(type(uint96).max, REWARD, type(uint96).max, 0);
        rollup.setAmounts(1, 0, 0, 0);
        assertEq(rollup.bond(), 0, "zero penalties: zero bond");
        assertEq(rollup.currentTermsId(), 4, "three new terms");
    }

    function test_safeParameters_windowLengths() public {
        uint32 max = rollup.MAX_PHASE_BLOCKS();
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(0, 1);
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(1, 0);
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(max + 1, 1);
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(1, max + 1);
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(type(uint32).max, type(uint32).max);
        rollup.setWindowLengths(max, max);
        assertEq(rollup.t1(), max, "max T1");
        assertEq(rollup.t2(), max, "max T2");
        rollup.setWindowLengths(1, 1);
        assertEq(rollup.t1(), 1, "min T1");
    }

    /// Zero penalties (zero bond): commits still need the minimum deposit and lock nothing.
    function test_zeroBond() public {
        rollup.setAmounts(MIN_DEPOSIT, REWARD, 0, 0);
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        assertEq(dep.lockedOf(alice), 0, "nothing locked");
        _rollToEnd(init);
        rollup.settleNoProof(init, alice);
        assertEq(dep.depositOf(alice), 2 ether, "nothing taken");
        assertTrue(rollup.commitOf(init, alice).settled, "settled");
    }

    // ================================================================== per-rollup budgets

    function _second() internal returns (ZkPowRollup r2) {
        r2 = _newRollup(0, 0, MIN_DEPOSIT, 1 ether, PENALTY_WRONG, PENALTY_NO_PROOF);
        dep.registerRollup(address(r2));
    }

    function test_budget_perRollup_noCrossSpending() public {
        ZkPowRollup r2 = _second(); // no budget of its own
        (uint64 init, uint64 fin) = _postOn(r2, 1);
        (,, uint128 reward,) = r2.verification(init);
        assertEq(reward, 0, "r2 cannot reserve from r1's budget");
        (uint256 free1, uint256 reserved1) = _budget(rollup);
        assertEq(free1, FUNDED, "r1 untouched");
        assertEq(reserved1, 0, "r1 reserve untouched");
        // r2 proves a sequence: nothing to pay
        bytes memory p = _proofOn(r2, init, fin, GENESIS, alice);
        _commitOn(r2, alice, init, fin, p);
        _rollToRevealOn(r2, init);
        assertTrue(_revealOn(r2, alice, init, fin, p), "valid");
        _rollToEndOn(r2, init);
        vm.prank(alice);
        assertEq(r2.claimReward(init), 0, "nothing");
        // and cannot take r1's money through MinerDeposit directly either
        vm.prank(address(r2));
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.ReserveExceeded.selector, 0, 1));
        dep.reward(alice, 1);
        // r2's penalties fund r2, not r1
        (uint64 init2, uint64 fin2) = _postOn(r2, 1);
        _commitOn(r2, bob, init2, fin2, hex"01");
        _rollToRevealOn(r2, init2);
        assertFalse(_revealOn(r2, bob, init2, fin2, hex"02"), "wrong");
        (uint256 free2,) = _budget(r2);
        assertEq(free2, PENALTY_WRONG, "r2's budget");
        (free1,) = _budget(rollup);
        assertEq(free1, FUNDED, "r1 unchanged");
        // funding r2 makes its next sequence paid
        dep.fundRewards{value: 1 ether}(address(r2));
        (uint64 init3,) = _postOn(r2, 1);
        (,, reward,) = r2.verification(init3);
        assertEq(reward, 1 ether, "r2 reward from its own budget");
        (free2,) = _budget(r2);
        assertEq(free2, PENALTY_WRONG, "1.5 - 1");
        _checkBooks();
    }

    function test_budget_reserveWhenShort() public {
        ZkPowRollup r2 = _second();
        dep.fundRewards{value: 2.5 ether}(address(r2));
        _postOn(r2, 1);
        _postOn(r2, 1);
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RewardReserved(address(r2), 1 ether, 0.5 ether);
        _postOn(r2, 1);
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RewardReserved(address(r2), 1 ether, 0);
        _postOn(r2, 1);
        uint128[4] memory expected = [uint128(1 ether), 1 ether, 0.5 ether, 0];
        for (uint64 b = 1; b <= 4; ++b) {
            (,, uint128 reward,) = r2.verification(b);
            assertEq(reward, expected[b - 1], "reserved per sequence");
        }
        (uint256 free, uint256 reserved) = _budget(r2);
        assertEq(free, 0, "budget used up");
        assertEq(reserved, 2.5 ether, "all reserved");
        assertEq(dep.totalReserved(), 2.5 ether, "r1 reserved nothing yet");
        _checkBooks();
    }

    function test_budget_rewardPaidFromReserveNotBudget() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        _rollToEnd(init);
        (uint256 freeBefore, uint256 reservedBefore) = _budget(rollup);
        vm.prank(alice);
        rollup.claimReward(init);
        (uint256 freeAfter, uint256 reservedAfter) = _budget(rollup);
        assertEq(freeAfter, freeBefore, "free budget untouched");
        assertEq(reservedAfter, reservedBefore - REWARD, "paid from the reserve");
    }

    // ================================================================== retired rollups

    function test_retire_stopsNewLocksAndReserves_keepsSettlement() public {
        (uint64 s1, uint64 f1) = _post(1);
        (uint64 s2, uint64 f2) = _post(1);
        bytes memory pa = _proof(s1, f1, alice);
        _commit(alice, s1, f1, pa);
        _commit(bob, s1, f1, hex"01"); // will not reveal
        _commit(carol, s2, f2, hex"02"); // will reveal a wrong proof
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RollupRetired(address(rollup));
        dep.retireRollup(address(rollup));
        assertFalse(dep.isRollup(address(rollup)), "retired");
        assertEq(uint256(dep.rollupStatus(address(rollup))), uint256(MinerDeposit.RollupStatus.Retired), "status");

        // no new locks
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, address(rollup)));
        rollup.submitProofHash(s1, f1, bytes32(uint256(3)));
        // no new reserves: posting still works, with no reward
        (uint64 s3,) = _post(1);
        (,, uint128 r3,) = rollup.verification(s3);
        assertEq(r3, 0, "no reward after retirement");
        // no new funds
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, address(rollup)));
        dep.fundRewards{value: 1 ether}(address(rollup));

        // what was locked or reserved is still settled
        _rollToReveal(s1);
        assertTrue(_reveal(alice, s1, f1, pa), "unlock works");
        assertEq(dep.lockedOf(alice), 0, "alice released");
        _rollToReveal(s2);
        assertFalse(_reveal(carol, s2, f2, hex"03"), "slash works");
        assertEq(dep.depositOf(carol), 1 ether - PENALTY_WRONG, "carol penalised");
        _rollToEnd(s1);
        vm.prank(dave);
        rollup.settleNoProof(s1, bob);
        assertEq(dep.depositOf(bob), 6 ether - PENALTY_NO_PROOF, "bob penalised");
        assertEq(dep.rewardsOf(dave), uint256(PENALTY_NO_PROOF) / 10, "settler share");
        vm.prank(alice);
        assertEq(rollup.claimReward(s1), REWARD, "reward reserved before retirement paid");
        assertEq(dep.lockedOf(alice), 0, "alice: nothing locked");
        assertEq(dep.lockedOf(bob), 0, "bob: nothing locked");
        assertEq(dep.lockedOf(carol), 0, "carol: nothing locked");
        _checkBooks();

        // a retired rollup cannot be registered again, nor retired twice
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.AlreadyRegistered.selector, address(rollup)));
        dep.registerRollup(address(rollup));
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.NotRollup.selector, address(rollup)));
        dep.retireRollup(address(rollup));
    }

    function test_retire_otherRollupsUnaffected() public {
        ZkPowRollup r2 = _second();
        dep.fundRewards{value: 1 ether}(address(r2));
        dep.retireRollup(address(rollup));
        (uint64 init, uint64 fin) = _postOn(r2, 1);
        bytes memory p = _proofOn(r2, init, fin, GENESIS, bob);
        _commitOn(r2, bob, init, fin, p);
        assertEq(dep.lockedOf(bob), BOND, "r2 locks");
        _rollToRevealOn(r2, init);
        assertTrue(_revealOn(r2, bob, init, fin, p), "valid");
        _rollToEndOn(r2, init);
        vm.prank(bob);
        assertEq(r2.claimReward(init), 1 ether, "r2 pays");
    }
}
