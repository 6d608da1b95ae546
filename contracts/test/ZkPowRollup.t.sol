// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RollupTestBase} from "./utils/RollupTestBase.sol";
import {StubVerifierForRuleTests} from "./utils/StubVerifierForRuleTests.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {Owned} from "../src/utils/Owned.sol";
import {IMinerDeposit} from "../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../src/interfaces/IGroth16BatchVerifier.sol";

/// Rollup rules with the test-only stub verifier (no cryptography here): construction, owner,
/// sequencing, commit, reveal, rewards, no-proof settlement and window resets, one sequence at a
/// time. Pipelined windows are in ZkPowRollupPipeline.t.sol, bonds, terms and budgets in
/// ZkPowRollupBonds.t.sol, attacks in ZkPowRollupAttacks.t.sol.
contract ZkPowRollupTest is RollupTestBase {
    // ================================================================== construction & owner

    function test_constructor_defaultsAndViews() public view {
        assertEq(rollup.t1(), 20, "default T1");
        assertEq(rollup.t2(), 32, "default T2");
        assertEq(rollup.stateRoot(), GENESIS, "genesis");
        assertEq(rollup.stateRootAt(0), GENESIS, "root after batch 0");
        assertEq(rollup.verifiedAtBlock(0), deployBlock, "batch 0 'verified' at deployment");
        assertEq(rollup.lastVerifiedBatch(), 0, "lastVerified");
        assertEq(rollup.lastBatch(), 0, "lastBatch");
        assertEq(rollup.batchSize(), BATCH_SIZE, "batchSize");
        assertEq(rollup.minDeposit(), MIN_DEPOSIT, "minDeposit");
        assertEq(rollup.bond(), BOND, "bond = max penalty");
        assertEq(rollup.rewardPerSequence(), REWARD, "reward");
        assertEq(rollup.penaltyWrongProof(), PENALTY_WRONG, "penalty wrong");
        assertEq(rollup.penaltyNoProof(), PENALTY_NO_PROOF, "penalty no proof");
        assertEq(rollup.currentTermsId(), 1, "terms 1");
        assertEq(rollup.sequencer(), sequencer, "sequencer");
        assertEq(rollup.owner(), address(this), "owner");
        assertEq(address(rollup.verifier()), address(stub), "verifier");
        assertEq(address(rollup.minerDeposit()), address(dep), "deposit");
        assertEq(rollup.domain(), _domain(), "domain");
        assertLt(rollup.domain(), 1 << 248, "domain is 248 bits");
        assertEq(rollup.SETTLER_SHARE_PERCENT(), 10, "settler share");
        assertEq(rollup.MAX_PHASE_BLOCKS(), 100_000, "max phase");
    }

    function _deploy(bytes32 genesis, uint256 batchSize, address seq, uint32 t1, uint32 t2) internal returns (ZkPowRollup) {
        return new ZkPowRollup(
            IMinerDeposit(address(dep)),
            IGroth16BatchVerifier(address(stub)),
            seq,
            genesis,
            batchSize,
            t1,
            t2,
            1,
            1,
            1,
            1
        );
    }

    function test_constructor_customWindow() public {
        ZkPowRollup r = _deploy(GENESIS, 20, sequencer, 5, 7);
        assertEq(r.t1(), 5, "T1");
        assertEq(r.t2(), 7, "T2");
    }

    function test_constructor_reverts() public {
        vm.expectRevert(ZkPowRollup.InvalidStateRoot.selector);
        _deploy(bytes32(R), 20, sequencer, 0, 0);
        vm.expectRevert(ZkPowRollup.InvalidBatchSize.selector);
        _deploy(GENESIS, 0, sequencer, 0, 0);
        vm.expectRevert(Owned.ZeroAddress.selector);
        _deploy(GENESIS, 20, address(0), 0, 0);
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        _deploy(GENESIS, 20, sequencer, 100_001, 0);
        vm.expectRevert(Owned.ZeroAddress.selector);
        new ZkPowRollup(IMinerDeposit(address(0)), IGroth16BatchVerifier(address(stub)), sequencer, GENESIS, 20, 0, 0, 1, 1, 1, 1);
        vm.expectRevert(Owned.ZeroAddress.selector);
        new ZkPowRollup(IMinerDeposit(address(dep)), IGroth16BatchVerifier(address(0)), sequencer, GENESIS, 20, 0, 0, 1, 1, 1, 1);
        // unsafe amounts: no minimum deposit, or a penalty above it
        vm.expectRevert(ZkPowRollup.UnsafeAmounts.selector);
        _newRollup(0, 0, 0, REWARD, 0, 0);
        vm.expectRevert(ZkPowRollup.UnsafeAmounts.selector);
        _newRollup(0, 0, 1 ether, REWARD, 1 ether + 1, 0);
        vm.expectRevert(ZkPowRollup.UnsafeAmounts.selector);
        _newRollup(0, 0, 1 ether, REWARD, 0, 1 ether + 1);
        _deploy(bytes32(R - 1), 20, sequencer, 0, 0); // largest valid root
    }

    function test_owner_setters() public {
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.TermsUpdated(2, 3, 4, MIN_DEPOSIT, PENALTY_WRONG, PENALTY_NO_PROOF);
        rollup.setWindowLengths(3, 4);
        assertEq(rollup.t1(), 3, "T1");
        assertEq(rollup.t2(), 4, "T2");
        assertEq(rollup.currentTermsId(), 2, "terms 2");
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.TermsUpdated(3, 3, 4, 8, 7, 5);
        vm.expectEmit(false, false, false, true, address(rollup));
        emit ZkPowRollup.RewardPerSequenceUpdated(6);
        rollup.setAmounts(8, 6, 7, 5);
        assertEq(rollup.minDeposit(), 8, "min");
        assertEq(rollup.rewardPerSequence(), 6, "reward");
        assertEq(rollup.penaltyWrongProof(), 7, "wrong");
        assertEq(rollup.penaltyNoProof(), 5, "noproof");
        assertEq(rollup.bond(), 7, "bond");
        assertEq(rollup.t1(), 3, "lengths kept");
        assertEq(rollup.currentTermsId(), 3, "terms 3");
        vm.expectEmit(false, false, false, true, address(rollup));
        emit ZkPowRollup.SequencerUpdated(alice);
        rollup.setSequencer(alice);
        assertEq(rollup.sequencer(), alice, "sequencer");
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(0, 4);
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(3, 0);
        vm.expectRevert(Owned.ZeroAddress.selector);
        rollup.setSequencer(address(0));
        assertEq(rollup.currentTermsId(), 3, "failed changes create no terms");
        rollup.transferOwnership(bob);
        assertEq(rollup.owner(), bob, "new owner");
    }

    function test_owner_onlyOwner() public {
        vm.startPrank(alice);
        vm.expectRevert(Owned.NotOwner.selector);
        rollup.setWindowLengths(3, 4);
        vm.expectRevert(Owned.NotOwner.selector);
        rollup.setAmounts(1, 1, 1, 1);
        vm.expectRevert(Owned.NotOwner.selector);
        rollup.setSequencer(alice);
        vm.expectRevert(Owned.NotOwner.selector);
        rollup.transferOwnership(alice);
        vm.stopPrank();
    }

    // ================================================================== sequenceBatches

    function test_sequence_storesHashesAndRanges() public {
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.SequenceBatches(1, 3);
        (uint64 init, uint64 fin) = _post(3);
        assertEq(init, 1, "init");
        assertEq(fin, 3, "fin");
        (uint64 init2, uint64 fin2) = _post(2);
        assertEq(init2, 4, "init2");
        assertEq(fin2, 5, "fin2");
        assertEq(rollup.lastBatch(), 5, "lastBatch");
        for (uint64 b = 1; b <= 5; ++b) {
            assertEq(rollup.batchHash(b), sha256(_batch(b)), "batch hash");
        }
        assertEq(rollup.batchHash(6), bytes32(0), "unposted");
        (uint64 f, uint64 open, uint32 wid, uint32 wt1, uint32 wt2, bool verified) = rollup.sequence(4);
        assertEq(f, 5, "final of sequence 4");
        assertEq(open, 0, "not open");
        assertEq(wid, 1, "window 1");
        assertEq(wt1, T1, "T1 of the sequence");
        assertEq(wt2, T2, "T2 of the sequence");
        assertFalse(verified, "unverified");
        (f,,,,,) = rollup.sequence(2);
        assertEq(f, 0, "2 starts no sequence");
        _checkPostedStatus();
    }

    function _checkPostedStatus() internal view {
        (ZkPowRollup.WindowPhase phase, uint32 w, uint64 o, uint64 ce, uint64 rs, uint64 re) = rollup.windowStatus(4);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.NotOpen), "phase");
        assertEq(w, 1, "window id");
        assertEq(uint256(o) + ce + rs + re, 0, "no boundaries before the window opens");
        (phase,,,,,) = rollup.windowStatus(3);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.None), "phase none");
        (,, uint128 reward,) = rollup.verification(4);
        assertEq(reward, REWARD, "reward reserved when posted");
        (uint256 free, uint256 reserved) = _budget(rollup);
        assertEq(reserved, 2 * REWARD, "two rewards reserved");
        assertEq(free, FUNDED - 2 * REWARD, "rest of the budget");
    }

    function test_sequence_onlySequencer() public {
        bytes[] memory b = new bytes[](1);
        b[0] = _batch(1);
        vm.prank(alice);
        vm.expectRevert(ZkPowRollup.NotSequencer.selector);
        rollup.sequenceBatches(b);
    }

    function test_sequence_rejectsEmptyAndTooLong() public {
        vm.startPrank(sequencer);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InvalidSequenceLength.selector, 0));
        rollup.sequenceBatches(new bytes[](0));
        bytes[] memory many = new bytes[](65);
        for (uint256 i; i < 65; ++i) {
            many[i] = new bytes(BATCH_SIZE);
        }
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InvalidSequenceLength.selector, 65));
        rollup.sequenceBatches(many);
        bytes[] memory max = new bytes[](64);
        for (uint256 i; i < 64; ++i) {
            max[i] = new bytes(BATCH_SIZE);
        }
        rollup.sequenceBatches(max);
        vm.stopPrank();
    }

    function test_sequence_rejectsWrongBatchLength() public {
        bytes[] memory b = new bytes[](2);
        b[0] = _batch(1);
        b[1] = new bytes(BATCH_SIZE - 1);
        vm.prank(sequencer);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InvalidBatchLength.selector, 1, BATCH_SIZE - 1, BATCH_SIZE));
        rollup.sequenceBatches(b);
        b[1] = new bytes(BATCH_SIZE + 20);
        vm.prank(sequencer);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InvalidBatchLength.selector, 1, BATCH_SIZE + 20, BATCH_SIZE));
        rollup.sequenceBatches(b);
    }

    // ================================================================== submitProofHash

    function test_commit_opensWindow() public {
        (uint64 init, uint64 fin) = _post(2);
        bytes memory p = _proof(init, fin, alice);
        bytes32 h = _hash(p, alice);
        uint64 o = uint64(block.number);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.WindowOpened(init, 1, o, o + T1);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.ProofHashSubmitted(init, fin, alice, h, 1);
        vm.prank(alice);
        rollup.submitProofHash(init, fin, h);
        _checkOpened(init, o);
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, alice);
        assertEq(bytes32(ci.proofHashPrefix), bytes32(bytes16(h)), "top 128 bits of the hash");
        assertEq(ci.windowId, 1, "commit window");
        assertFalse(ci.revealed || ci.valid || ci.punished || ci.rewarded || ci.settled, "flags");
        assertEq(ci.weight, 2 ether, "weight = active deposit at commit");
        assertEq(rollup.proofHashOf(p, alice), h, "proofHashOf");
        assertEq(dep.lockedOf(alice), BOND, "bond locked");
        assertEq(dep.freeDepositOf(alice), 2 ether - BOND, "free");
        assertEq(dep.depositOf(alice), 2 ether, "deposit unchanged");
    }

    function _checkOpened(uint64 init, uint64 o) internal view {
        (, uint64 open, uint32 wid, uint32 wt1, uint32 wt2,) = rollup.sequence(init);
        assertEq(open, o, "open block");
        assertEq(wid, 1, "window");
        assertEq(wt1, T1, "T1");
        assertEq(wt2, T2, "T2");
        (ZkPowRollup.WindowPhase phase, uint32 w, uint64 ob, uint64 ce, uint64 rs, uint64 re) = rollup.windowStatus(init);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.Commit), "commit phase");
        assertEq(w, 1, "window id");
        assertEq(ob, o, "openBlock");
        assertEq(ce, o + T1, "commitEnd");
        assertEq(rs, o + T1, "revealStart = commitEnd (predecessor: genesis)");
        assertEq(re, o + T1 + T2, "revealEnd");
    }

    function test_commit_secondCommitDoesNotMoveWindow() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        uint256 o = block.number;
        vm.roll(o + 7);
        vm.recordLogs();
        _commit(bob, init, fin, hex"02");
        assertEq(vm.getRecordedLogs().length, 1, "only ProofHashSubmitted, no WindowOpened");
        assertEq(_openBlock(init), o, "window still opened at O");
    }

    function test_commit_insufficientDeposit() public {
        (uint64 init, uint64 fin) = _post(1);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientDeposit.selector, 0, MIN_DEPOSIT));
        rollup.submitProofHash(init, fin, bytes32(uint256(1)));
        _fundMiner(dave, MIN_DEPOSIT - 1);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientDeposit.selector, MIN_DEPOSIT - 1, MIN_DEPOSIT));
        rollup.submitProofHash(init, fin, bytes32(uint256(1)));
        // a pending withdrawal does not count
        vm.prank(carol);
        dep.requestWithdrawal(1);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientDeposit.selector, MIN_DEPOSIT - 1, MIN_DEPOSIT));
        rollup.submitProofHash(init, fin, bytes32(uint256(1)));
        assertEq(dep.lockedOf(carol), 0, "nothing locked");
    }

    function test_commit_insufficientFreeDeposit() public {
        // alice (2 ether) backs four bonds of 0.5 ether, not five
        for (uint256 i; i < 5; ++i) {
            _post(1);
        }
        for (uint64 b = 1; b <= 4; ++b) {
            _commit(alice, b, b, hex"01");
        }
        assertEq(dep.lockedOf(alice), 4 * uint256(BOND), "four bonds");
        assertEq(dep.freeDepositOf(alice), 0, "nothing free");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, BOND));
        rollup.submitProofHash(5, 5, bytes32(uint256(1)));
        // another 0.5 ether frees room for one more
        _fundMiner(alice, BOND);
        _commit(alice, 5, 5, hex"01");
        assertEq(dep.lockedOf(alice), 5 * uint256(BOND), "five bonds");
    }

    function test_commit_unknownSequence() public {
        (uint64 init, uint64 fin) = _post(3);
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.UnknownSequence.selector, init, fin - 1));
        rollup.submitProofHash(init, fin - 1, bytes32(uint256(1)));
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.UnknownSequence.selector, init + 1, fin));
        rollup.submitProofHash(init + 1, fin, bytes32(uint256(1)));
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.UnknownSequence.selector, 9, 9));
        rollup.submitProofHash(9, 9, bytes32(uint256(1)));
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.UnknownSequence.selector, 0, 0));
        rollup.submitProofHash(0, 0, bytes32(uint256(1)));
        vm.stopPrank();
    }

    /// v2: a later sequence takes commits while earlier ones are unverified.
    function test_commit_laterSequenceBeforeEarlierVerified() public {
        _post(2);
        (uint64 init2, uint64 fin2) = _post(1);
        _commit(alice, init2, fin2, _proof(init2, fin2, alice));
        assertEq(_openBlock(init2), block.number, "window of sequence 2 open");
        assertEq(_openBlock(1), 0, "sequence 1 untouched");
        assertEq(rollup.lastVerifiedBatch(), 0, "nothing verified");
    }

    function test_commit_alreadyVerified() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, p), "valid");
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.SequenceAlreadyVerified.selector, init));
        rollup.submitProofHash(init, fin, bytes32(uint256(1)));
        _rollToEnd(init);
        vm.roll(block.number + 1000);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.SequenceAlreadyVerified.selector, init));
        rollup.submitProofHash(init, fin, bytes32(uint256(1)));
    }

    function test_commit_phaseBoundary() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        uint256 open = block.number;
        vm.roll(open + T1 - 1); // last commit block
        _commit(bob, init, fin, hex"02");
        vm.roll(open + T1); // first reveal block
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.CommitPhaseOver.selector, init, open + T1));
        rollup.submitProofHash(init, fin, bytes32(uint256(3)));
        vm.roll(open + T1 + T2 - 1); // last reveal block
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.CommitPhaseOver.selector, init, open + T1));
        rollup.submitProofHash(init, fin, bytes32(uint256(3)));
    }

    function test_commit_oncePerWindow() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.AlreadyCommitted.selector, init, alice, 1));
        rollup.submitProofHash(init, fin, bytes32(uint256(2)));
        assertEq(dep.lockedOf(alice), BOND, "one bond");
    }

    function test_commit_windowLengthsOfThePostedSequence() public {
        (uint64 init, uint64 fin) = _post(1);
        rollup.setWindowLengths(5, 6); // after posting: not for this sequence
        _commit(alice, init, fin, hex"01");
        uint256 open = block.number;
        vm.roll(open + 10); // past the new T1, within the sequence's T1
        _commit(bob, init, fin, hex"02");
        (ZkPowRollup.WindowPhase phase, uint64 ce, uint64 rs, uint64 re) = _statusOn(rollup, init);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.Commit), "still commit phase");
        assertEq(ce, open + T1, "commit end");
        assertEq(rs, open + T1, "reveal start");
        assertEq(re, open + T1 + T2, "reveal end");
    }

    function test_commit_expiredWindowResetsAndReopens() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01"); // alice never reveals
        uint256 open = block.number;
        vm.roll(open + T1 + T2);
        assertEq(uint256(_phase(init)), uint256(ZkPowRollup.WindowPhase.Ended), "ended");
        bytes memory p = _proof(init, fin, bob);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.WindowReset(init, 1, 2);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.WindowOpened(init, 2, uint64(block.number), uint64(block.number) + T1);
        _commit(bob, init, fin, p);
        (, uint64 o, uint32 wid,,,) = rollup.sequence(init);
        assertEq(wid, 2, "window 2");
        assertEq(o, block.number, "reopened now");
        assertEq(dep.lockedOf(alice), BOND, "alice's bond stays locked until settled");
        // alice's old commit is no commit of this window
        _rollToReveal(init);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotCommitter.selector, init, alice));
        rollup.verifyBatches(init, fin, bytes32(0), new bytes32[](0), hex"01");
        assertTrue(_reveal(bob, init, fin, p), "bob valid in window 2");
    }

    function test_commit_recommitAfterResetSettlesStaleCommit() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        vm.roll(block.number + T1 + T2);
        uint256 before = dep.depositOf(alice);
        (uint256 budgetBefore,) = _budget(rollup);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Punished(init, alice, ZkPowRollup.PunishReason.NoProof, PENALTY_NO_PROOF, alice, 0);
        _commit(alice, init, fin, hex"02");
        assertEq(dep.depositOf(alice), before - PENALTY_NO_PROOF, "stale commit settled");
        assertEq(dep.lockedOf(alice), BOND, "old bond released, new bond locked");
        assertEq(dep.rewardsOf(alice), 0, "no settler share for settling oneself");
        (uint256 budgetAfter,) = _budget(rollup);
        assertEq(budgetAfter, budgetBefore + PENALTY_NO_PROOF, "whole penalty to the budget");
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, alice);
        assertEq(ci.windowId, 2, "new commit in window 2");
        assertFalse(ci.punished || ci.settled, "new commit open");
        assertEq(ci.weight, before - PENALTY_NO_PROOF, "weight = deposit after the penalty");
        _checkBooks();
    }

    function test_commit_recommitAfterSettledStaleCommit_noDoublePenalty() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        vm.roll(block.number + T1 + T2);
        rollup.settleNoProof(init, alice);
        uint256 before = dep.depositOf(alice);
        _commit(alice, init, fin, hex"02");
        assertEq(dep.depositOf(alice), before, "no second penalty");
        assertEq(dep.lockedOf(alice), BOND, "one bond");
    }

    function test_commit_minimumAndMaximumWeight() public {
        ZkPowRollup r = _newRollup(0, 0, 1, REWARD, 0, 0); // bond 0, minimum deposit 1 wei
        dep.registerRollup(address(r));
        dep.fundRewards{value: 1 ether}(address(r));
        _postOn(r, 1);
        _fundMiner(dave, 1000); // 1000 wei: 0 gwei
        bytes memory p = _proofOn(r, 1, 1, GENESIS, dave);
        _commitOn(r, dave, 1, 1, p);
        assertEq(r.commitOf(1, dave).weight, 1 gwei, "at least 1 gwei");
        address whale = address(0x3A1E);
        _fundMiner(whale, 100_000_000 ether);
        _commitOn(r, whale, 1, 1, _proofOn(r, 1, 1, GENESIS, whale));
        assertEq(r.commitOf(1, whale).weight, uint256(type(uint56).max) * 1 gwei, "capped at 2^56 - 1 gwei");
        _rollToRevealOn(r, 1);
        assertTrue(_revealOn(r, dave, 1, 1, p), "valid");
        _rollToEndOn(r, 1);
        vm.prank(dave);
        assertEq(r.claimReward(1), REWARD, "sole valid revealer gets all");
    }

    // ================================================================== verifyBatches

    function test_reveal_valid_advancesState() public {
        (uint64 init, uint64 fin) = _post(3);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.SequenceVerified(init, fin, newRoot, alice);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.ProofAccepted(init, alice, 1, 2 ether, true);
        vm.prank(alice);
        assertTrue(rollup.verifyBatches(init, fin, newRoot, roots, p), "valid");
        assertEq(rollup.lastVerifiedBatch(), fin, "lastVerified");
        assertEq(rollup.stateRoot(), newRoot, "stateRoot");
        assertEq(rollup.verifiedAtBlock(fin), block.number, "verified now");
        (bytes32 oldR, bytes32 newR, uint128 rew, uint128 tw) = rollup.verification(init);
        assertEq(oldR, GENESIS, "old root");
        assertEq(newR, newRoot, "new root");
        assertEq(rew, REWARD, "reward reserved at posting");
        assertEq(rollup.stateRootAt(0), GENESIS, "root after 0");
        assertEq(rollup.stateRootAt(fin), newRoot, "root after fin");
        assertEq(rollup.stateRootAt(fin - 1), bytes32(0), "intermediate roots are not stored");
        assertEq(rollup.verifiedAtBlock(fin - 1), 0, "not a sequence end");
        assertEq(tw, 2 ether / 1 gwei, "total weight (gwei)");
        (,,,,, bool verified) = rollup.sequence(init);
        assertTrue(verified, "verified");
        _checkValidCommit(init, alice, 2 ether, _hash(p, alice));
        assertEq(dep.lockedOf(alice), 0, "bond released");
        assertEq(dep.depositOf(alice), 2 ether, "deposit intact");
        // the next sequence, against the new root
        (uint64 init2, uint64 fin2) = _post(2);
        bytes memory p2 = _proof(init2, fin2, newRoot, bob);
        _commit(bob, init2, fin2, p2);
        _rollToReveal(init2);
        assertTrue(_reveal(bob, init2, fin2, p2), "second sequence");
        assertEq(rollup.lastVerifiedBatch(), fin2, "lastVerified 2");
    }

    function _checkValidCommit(uint64 init, address miner, uint256 expectedWeight, bytes32 h) internal view {
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, miner);
        assertTrue(ci.revealed && ci.valid && ci.settled && !ci.punished && !ci.rewarded, "flags");
        assertEq(ci.weight, expectedWeight, "weight = deposit at commit");
        assertEq(bytes32(ci.proofHashPrefix), bytes32(bytes16(h)), "prefix kept");
    }

    function test_reveal_publicInputsView() public {
        (uint64 init,) = _post(1);
        uint256[7] memory x = rollup.publicInputs(init, GENESIS, _root(init), alice);
        bytes32[] memory none = new bytes32[](0);
        uint256[] memory e = _expectedInputs(init, init, GENESIS, none, _root(init), alice);
        for (uint256 j; j < 7; ++j) {
            assertEq(x[j], e[j], "input");
        }
    }

    function test_reveal_timing() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        uint256 open = block.number;
        vm.roll(open + T1 - 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.RevealTooEarly.selector, init, open + T1));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), p);
        vm.roll(open + T1 + T2);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.RevealPhaseOver.selector, init, open + T1 + T2));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), p);
        vm.roll(open + T1 + T2 - 1); // last reveal block
        assertTrue(_reveal(alice, init, fin, p), "valid at the last block");
    }

    function test_reveal_firstRevealBlock() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        vm.roll(block.number + T1);
        assertTrue(_reveal(alice, init, fin, p), "valid at O + T1");
    }

    function test_reveal_notCommitter() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        _rollToReveal(init);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotCommitter.selector, init, bob));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), hex"01");
    }

    function test_reveal_unknownSequence() public {
        (uint64 init, uint64 fin) = _post(2);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.UnknownSequence.selector, init, fin + 1));
        rollup.verifyBatches(init, fin + 1, _root(fin), new bytes32[](1), hex"01");
    }

    function test_reveal_windowNotOpen() public {
        (uint64 init, uint64 fin) = _post(1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotCommitter.selector, init, alice));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), hex"01");
    }

    function test_reveal_alreadyRevealed() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, p), "valid");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.AlreadyRevealed.selector, init, alice));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), p);
    }

    function test_reveal_alreadyRevealedAfterPenalty() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        _rollToReveal(init);
        assertFalse(_reveal(alice, init, fin, hex"02"), "wrong hash");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.AlreadyRevealed.selector, init, alice));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), hex"01");
    }

    function test_reveal_wrongHash_penalisedNoRevert() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        uint256 before = dep.depositOf(alice);
        (uint256 budgetBefore,) = _budget(rollup);
        bytes memory other = _proof(init, fin, bob); // valid for bob, not the committed one
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Punished(init, alice, ZkPowRollup.PunishReason.WrongProofHash, PENALTY_WRONG, address(0), 0);
        vm.expectEmit(true, true, false, true, address(dep));
        emit MinerDeposit.Slashed(address(rollup), alice, PENALTY_WRONG, address(0), 0);
        assertFalse(_reveal(alice, init, fin, other), "wrong hash returns false");
        assertEq(dep.depositOf(alice), before - PENALTY_WRONG, "penalty from the bond");
        assertEq(dep.lockedOf(alice), 0, "rest of the bond released");
        (uint256 budgetAfter,) = _budget(rollup);
        assertEq(budgetAfter, budgetBefore + PENALTY_WRONG, "penalty to the rollup's budget");
        assertEq(rollup.lastVerifiedBatch(), 0, "not verified");
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, alice);
        assertTrue(ci.revealed && ci.punished && ci.settled && !ci.valid, "flags");
        _checkBooks();
    }

    function test_reveal_invalidProof_penalisedNoRevert() public {
        (uint64 init, uint64 fin) = _post(2);
        bytes memory p = _proof(init, fin, bob); // a proof for bob's address, committed by alice
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        uint256 before = dep.depositOf(alice);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Punished(init, alice, ZkPowRollup.PunishReason.InvalidProof, PENALTY_WRONG, address(0), 0);
        assertFalse(_reveal(alice, init, fin, p), "invalid returns false");
        assertEq(dep.depositOf(alice), before - PENALTY_WRONG, "slashed");
        assertEq(dep.lockedOf(alice), 0, "bond settled");
        assertEq(rollup.stateRoot(), GENESIS, "state unchanged");
    }

    function test_reveal_wrongRoots_invalid() public {
        (uint64 init, uint64 fin) = _post(3);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        roots[1] = bytes32(uint256(roots[1]) ^ 1);
        vm.prank(alice);
        assertFalse(rollup.verifyBatches(init, fin, newRoot, roots, p), "wrong intermediate root");
    }

    function test_reveal_wrongRootCount_invalid() public {
        (uint64 init, uint64 fin) = _post(3);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        vm.prank(alice);
        assertFalse(rollup.verifyBatches(init, fin, _root(fin), new bytes32[](1), p), "1 root for 3 batches");
        assertTrue(rollup.commitOf(init, alice).punished, "punished");
    }

    function test_reveal_rootNotInField_invalid() public {
        (uint64 init, uint64 fin) = _post(1);
        uint256[] memory x = _expectedInputs(init, fin, GENESIS, new bytes32[](0), bytes32(R), alice);
        x[3] = R; // the stub would accept a proof bound to this, but not an input >= r
        bytes memory p = _stubProof(x);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        vm.prank(alice);
        assertFalse(rollup.verifyBatches(init, fin, bytes32(R), new bytes32[](0), p), "root >= r");
        assertEq(rollup.stateRoot(), GENESIS, "unchanged");
    }

    function test_reveal_verifierRevert_countsAsInvalid() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        stub.setMode(StubVerifierForRuleTests.Mode.Revert);
        uint256 before = dep.depositOf(alice);
        assertFalse(_reveal(alice, init, fin, p), "revert = invalid");
        assertEq(dep.depositOf(alice), before - PENALTY_WRONG, "slashed");
    }

    function test_reveal_verifierOutOfGas_revertsTx() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        stub.setMode(StubVerifierForRuleTests.Mode.RevertInsufficientGas);
        uint256 need = stub.verifyGas(1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InsufficientGasForVerification.selector, need));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), p);
        assertEq(dep.lockedOf(alice), BOND, "bond still locked");
    }

    function test_reveal_lowGasLimit_revertsInsteadOfPenalty() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        uint256 need = stub.verifyGas(1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InsufficientGasForVerification.selector, need));
        rollup.verifyBatches{gas: 60000}(init, fin, _root(fin), new bytes32[](0), p);
        assertFalse(rollup.commitOf(init, alice).revealed, "nothing recorded");
        assertTrue(_reveal(alice, init, fin, p), "valid with enough gas");
    }

    function test_reveal_lateValidProofCounts() public {
        (uint64 init, uint64 fin) = _post(2);
        bytes memory pa = _proof(init, fin, alice);
        bytes memory pb = _proof(init, fin, bob);
        _commit(alice, init, fin, pa);
        _commit(bob, init, fin, pb);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "alice first");
        bytes32 rootAfter = rollup.stateRoot();
        // another sequence gets posted meanwhile; bob's late proof still verifies against the old root
        _post(1);
        vm.roll(block.number + 5);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.ProofAccepted(init, bob, 1, 6 ether, false);
        assertTrue(_reveal(bob, init, fin, pb), "bob late");
        assertEq(rollup.stateRoot(), rootAfter, "state unchanged by late proof");
        assertEq(rollup.lastVerifiedBatch(), fin, "lastVerified unchanged");
        assertEq(dep.lockedOf(bob), 0, "bob's bond released");
        (,,, uint128 tw) = rollup.verification(init);
        assertEq(tw, 8 ether / 1 gwei, "total weight");
    }

    function test_reveal_lateProofWithOtherNewRoot_invalid() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory pa = _proof(init, fin, alice);
        // bob's proof claims another new root (the stub would accept it: it only binds the inputs)
        uint256[] memory xb = _expectedInputs(init, fin, GENESIS, new bytes32[](0), bytes32(uint256(77)), bob);
        bytes memory pb = _stubProof(xb);
        _commit(alice, init, fin, pa);
        _commit(bob, init, fin, pb);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "alice");
        vm.prank(bob);
        assertFalse(rollup.verifyBatches(init, fin, bytes32(uint256(77)), new bytes32[](0), pb), "other root");
    }

    function test_reveal_copiedProofIsWorthless() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory pa = _proof(init, fin, alice);
        _commit(alice, init, fin, pa);
        _commit(bob, init, fin, pa); // bob copies alice's proof (he cannot know it yet, but even so)
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "alice");
        assertFalse(_reveal(bob, init, fin, pa), "bob's copy is bound to alice");
        assertEq(dep.depositOf(bob), 6 ether - PENALTY_WRONG, "copier penalised");
    }

    // ================================================================== rewards

    function test_claim_proRata() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory pa = _proof(init, fin, alice);
        bytes memory pb = _proof(init, fin, bob);
        bytes memory pc = _proof(init, fin, carol);
        _commit(alice, init, fin, pa);
        _commit(bob, init, fin, pb);
        _commit(carol, init, fin, hex"00"); // carol commits garbage
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "alice");
        assertTrue(_reveal(bob, init, fin, pb), "bob");
        assertFalse(_reveal(carol, init, fin, pc), "carol wrong hash");
        _rollToEnd(init);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Rewarded(init, alice, uint256(REWARD) * 2 / 8);
        vm.expectEmit(true, true, false, true, address(dep));
        emit MinerDeposit.Rewarded(address(rollup), alice, uint256(REWARD) * 2 / 8);
        vm.prank(alice);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 2 / 8, "alice 2/8");
        vm.prank(bob);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 6 / 8, "bob 6/8");
        assertEq(dep.rewardsOf(alice), uint256(REWARD) * 2 / 8, "credited in MinerDeposit");
        (, uint256 reserved) = _budget(rollup);
        assertEq(reserved, 0, "reserve spent");
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NoValidProof.selector, init, carol));
        rollup.claimReward(init);
        uint256 balanceBefore = alice.balance;
        vm.prank(alice);
        dep.claimRewards();
        assertEq(alice.balance, balanceBefore + uint256(REWARD) * 2 / 8, "paid out");
        _checkBooks();
    }

    function test_claim_beforeEnd_reverts() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        uint256 open = block.number;
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, p), "valid");
        vm.roll(open + T1 + T2 - 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotEnded.selector, init, open + T1 + T2));
        rollup.claimReward(init);
        vm.roll(open + T1 + T2);
        vm.prank(alice);
        rollup.claimReward(init);
    }

    function test_claim_twice_reverts() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        _rollToEnd(init);
        vm.startPrank(alice);
        rollup.claimReward(init);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.AlreadyRewarded.selector, init, alice));
        rollup.claimReward(init);
        vm.stopPrank();
        assertTrue(rollup.commitOf(init, alice).rewarded, "rewarded flag");
    }

    function test_claim_noCommit_reverts() public {
        (uint64 init,) = _post(1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NoValidProof.selector, init, alice));
        rollup.claimReward(init);
    }

    function test_claim_rewardFixedWhenPosted() public {
        (uint64 init, uint64 fin) = _post(1);
        rollup.setAmounts(MIN_DEPOSIT, 5 ether, PENALTY_WRONG, PENALTY_NO_PROOF);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        _rollToEnd(init);
        vm.prank(alice);
        assertEq(rollup.claimReward(init), REWARD, "reward as of posting");
        // a sequence posted after the change gets the new reward
        (uint64 init2, uint64 fin2) = _post(1);
        (,, uint128 reward2,) = rollup.verification(init2);
        assertEq(reward2, 5 ether, "new reward");
        bytes memory p2 = _proof(init2, fin2, alice);
        _commit(alice, init2, fin2, p2);
        _rollToReveal(init2);
        _reveal(alice, init2, fin2, p2);
        _rollToEnd(init2);
        vm.prank(alice);
        assertEq(rollup.claimReward(init2), 5 ether, "new reward paid");
    }

    /// The budget is short: posting reserves what is there, the winners share that.
    function test_claim_budgetShort_reservesWhatIsThere() public {
        ZkPowRollup r2 = _newRollup(0, 0, MIN_DEPOSIT, REWARD, PENALTY_WRONG, PENALTY_NO_PROOF);
        dep.registerRollup(address(r2));
        dep.fundRewards{value: REWARD / 4}(address(r2));
        vm.expectEmit(true, false, false, true, address(dep));
        emit MinerDeposit.RewardReserved(address(r2), REWARD, REWARD / 4);
        (uint64 init, uint64 fin) = _postOn(r2, 1);
        (,, uint128 reward,) = r2.verification(init);
        assertEq(reward, REWARD / 4, "what the budget had");
        (uint64 init2, uint64 fin2) = _postOn(r2, 1);
        (,, reward,) = r2.verification(init2);
        assertEq(reward, 0, "empty budget: no reward, posting still works");
        bytes memory p = _proofOn(r2, init, fin, GENESIS, alice);
        _commitOn(r2, alice, init, fin, p);
        _rollToRevealOn(r2, init);
        assertTrue(_revealOn(r2, alice, init, fin, p), "valid");
        bytes memory p2 = _proofOn(r2, init2, fin2, _root(fin), alice);
        _commitOn(r2, alice, init2, fin2, p2);
        _rollToRevealOn(r2, init2);
        assertTrue(_revealOn(r2, alice, init2, fin2, p2), "valid 2");
        _rollToEndOn(r2, init2);
        vm.startPrank(alice);
        assertEq(r2.claimReward(init), REWARD / 4, "reserved part");
        assertEq(r2.claimReward(init2), 0, "nothing reserved, nothing paid");
        vm.stopPrank();
        assertEq(dep.rewardsOf(alice), REWARD / 4, "credited");
        (uint256 free,) = _budget(rollup);
        assertEq(free, FUNDED, "the other rollup's budget untouched");
        _checkBooks();
    }

    // ================================================================== settleNoProof

    function test_settleNoProof_byThirdParty() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _commit(bob, init, fin, hex"01"); // bob never reveals
        uint256 open = block.number;
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        vm.roll(open + T1 + T2 - 1);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotEnded.selector, init, open + T1 + T2));
        rollup.settleNoProof(init, bob);
        vm.roll(open + T1 + T2);
        uint256 before = dep.depositOf(bob);
        (uint256 budgetBefore,) = _budget(rollup);
        uint256 share = uint256(PENALTY_NO_PROOF) * 10 / 100;
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Punished(init, bob, ZkPowRollup.PunishReason.NoProof, PENALTY_NO_PROOF, carol, share);
        vm.expectEmit(true, true, false, true, address(dep));
        emit MinerDeposit.Slashed(address(rollup), bob, PENALTY_NO_PROOF, carol, share);
        vm.prank(carol); // anyone
        rollup.settleNoProof(init, bob);
        assertEq(dep.depositOf(bob), before - PENALTY_NO_PROOF, "slashed");
        assertEq(dep.lockedOf(bob), 0, "bond settled");
        assertEq(dep.rewardsOf(carol), share, "settler's share");
        (uint256 budgetAfter,) = _budget(rollup);
        assertEq(budgetAfter, budgetBefore + PENALTY_NO_PROOF - share, "rest to the budget");
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, bob);
        assertTrue(ci.punished && ci.settled && !ci.revealed, "flags");
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotSettleable.selector, init, bob));
        rollup.settleNoProof(init, bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotSettleable.selector, init, alice));
        rollup.settleNoProof(init, alice); // valid proof
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotSettleable.selector, init, carol));
        rollup.settleNoProof(init, carol); // never committed
        _checkBooks();
    }

    function test_settleNoProof_bySelf_noShare() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(bob, init, fin, hex"01");
        _rollToEnd(init);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ZkPowRollup.Punished(init, bob, ZkPowRollup.PunishReason.NoProof, PENALTY_NO_PROOF, bob, 0);
        vm.prank(bob);
        rollup.settleNoProof(init, bob);
        assertEq(dep.rewardsOf(bob), 0, "no share for oneself");
        assertEq(dep.depositOf(bob), 6 ether - PENALTY_NO_PROOF, "full penalty");
    }

    function test_settleNoProof_afterWrongProof_notTwice() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        _rollToReveal(init);
        assertFalse(_reveal(alice, init, fin, hex"02"), "wrong hash");
        _rollToEnd(init);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotSettleable.selector, init, alice));
        rollup.settleNoProof(init, alice);
        assertEq(dep.depositOf(alice), 2 ether - PENALTY_WRONG, "one penalty only");
    }

    function test_settleNoProof_staleWindowAfterReset() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        vm.roll(block.number + T1 + T2);
        _commit(bob, init, fin, hex"02"); // resets, window 2 is open
        rollup.settleNoProof(init, alice); // alice's window-1 commit ended without a proof
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, alice);
        assertTrue(ci.punished && ci.settled, "settled");
        assertEq(ci.windowId, 1, "window 1");
        // bob's commit in the open window is not settleable yet
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotEnded.selector, init, block.number + T1 + T2));
        rollup.settleNoProof(init, bob);
    }

    // ================================================================== resetWindow

    function test_resetWindow() public {
        (uint64 init, uint64 fin) = _post(1);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, init));
        rollup.resetWindow(init); // not open
        _commit(alice, init, fin, hex"01");
        vm.roll(block.number + T1 + T2 - 1);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, init));
        rollup.resetWindow(init);
        vm.roll(block.number + 1);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.WindowReset(init, 1, 2);
        rollup.resetWindow(init);
        (ZkPowRollup.WindowPhase phase, uint32 wid,,,,) = rollup.windowStatus(init);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.NotOpen), "not open");
        assertEq(wid, 2, "window 2");
        assertEq(dep.lockedOf(alice), BOND, "a reset settles nobody");
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, init));
        rollup.resetWindow(init);
        // the next commit opens window 2 now
        bytes memory p = _proof(init, fin, bob);
        _commit(bob, init, fin, p);
        assertEq(_openBlock(init), block.number, "opened");
        _rollToReveal(init);
        assertTrue(_reveal(bob, init, fin, p), "valid");
        // alice's commit of the reset window is settleable
        rollup.settleNoProof(init, alice);
        assertEq(dep.lockedOf(alice), 0, "settled");
    }

    function test_resetWindow_verifiedNeverResets() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        _rollToEnd(init);
        vm.roll(block.number + 1000);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, init));
        rollup.resetWindow(init);
        assertEq(uint256(_phase(init)), uint256(ZkPowRollup.WindowPhase.Ended), "ended");
    }

    function test_resetWindow_unknown() public {
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, 1));
        rollup.resetWindow(1);
    }

    // ================================================================== gas

    /// A commit as a transaction, estimated in-test: 21000 + calldata + execution, with the
    /// rollup's and MinerDeposit's storage cold (vm.cool) as at the start of a real transaction and
    /// the rollup account warm (it is the transaction's `to`). The estimate comes out about 2,000
    /// below the real transactions that `make -f mk/evm.mk gas-bench` measures (docs/CONTRACTS.md,
    /// "Gas design").
    function _commitTxGas(address miner, uint64 init, uint64 fin) internal returns (uint256) {
        bytes memory data = abi.encodeCall(ZkPowRollup.submitProofHash, (init, fin, keccak256(abi.encode(miner))));
        uint256 calldataGas;
        for (uint256 k; k < data.length; ++k) {
            calldataGas += data[k] == 0 ? 4 : 16;
        }
        vm.cool(address(rollup));
        vm.cool(address(dep));
        address(rollup).balance; // warm the account, not its storage
        vm.prank(miner);
        uint256 g0 = gasleft();
        (bool ok,) = address(rollup).call(data);
        uint256 exec = g0 - gasleft();
        assertTrue(ok, "commit");
        return 21000 + calldataGas + exec;
    }

    function test_gas_commit() public {
        (uint64 init, uint64 fin) = _post(1);
        (uint64 init2, uint64 fin2) = _post(1);
        uint256 first = _commitTxGas(alice, init, fin); // the first bond locked in MinerDeposit
        uint256 steady = _commitTxGas(bob, init2, fin2); // another bond is locked already
        uint256 joining = _commitTxGas(carol, init, fin); // a window opened by someone else
        log("submitProofHash tx gas, opening commit, first bond ever locked", first);
        log("submitProofHash tx gas, opening commit, other bonds locked", steady);
        log("submitProofHash tx gas, second commit in an open window", joining);
        assertLt(first, COMMIT_GAS_CEILING_FIRST_LOCK, "first-lock commit gas");
        assertLt(steady, COMMIT_GAS_CEILING, "opening commit gas");
        assertLt(joining, steady, "joining a window is cheaper");
    }

    /// Ceilings of the opening commit (docs/CONTRACTS.md, "Gas design"): regression guards. The
    /// lock in MinerDeposit puts a v2 commit above the v1 goal of 70,000.
    uint256 internal constant COMMIT_GAS_CEILING = 75_000;
    uint256 internal constant COMMIT_GAS_CEILING_FIRST_LOCK = 92_000;
}
