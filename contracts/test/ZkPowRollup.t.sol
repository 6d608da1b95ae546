// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RollupTestBase} from "./utils/RollupTestBase.sol";
import {StubVerifierForRuleTests} from "./utils/StubVerifierForRuleTests.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {Owned} from "../src/utils/Owned.sol";
import {IMinerDeposit} from "../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../src/interfaces/IGroth16BatchVerifier.sol";

/// Rollup rules with the test-only stub verifier (no cryptography here).
contract ZkPowRollupTest is RollupTestBase {
    // events (redeclared for expectEmit)
    event SequenceBatches(uint64 indexed initNumBatch, uint64 finalNewBatch);
    event WindowOpened(uint64 indexed initNumBatch, uint32 windowId, uint64 openBlock, uint64 commitEnd, uint64 revealEnd);
    event ProofHashSubmitted(
        uint64 indexed initNumBatch, uint64 finalNewBatch, address indexed miner, bytes32 proofHash, uint32 windowId
    );
    event SequenceVerified(uint64 indexed initNumBatch, uint64 finalNewBatch, bytes32 newStateRoot, address indexed miner);
    event ProofAccepted(uint64 indexed initNumBatch, address indexed miner, uint32 windowId, uint256 weight, bool first);
    event Rewarded(uint64 indexed initNumBatch, address indexed miner, uint256 amount);
    event Punished(
        uint64 indexed initNumBatch, address indexed miner, ZkPowRollup.PunishReason reason, uint256 amount, uint256 taken
    );
    event WindowReset(uint64 indexed initNumBatch, uint32 expiredWindowId, uint32 newWindowId);

    // ================================================================== construction & owner

    function test_constructor_defaultsAndViews() public view {
        assertEq(rollup.t1(), 20, "default T1");
        assertEq(rollup.t2(), 32, "default T2");
        assertEq(rollup.stateRoot(), GENESIS, "genesis");
        assertEq(rollup.lastVerifiedBatch(), 0, "lastVerified");
        assertEq(rollup.lastBatch(), 0, "lastBatch");
        assertEq(rollup.batchSize(), BATCH_SIZE, "batchSize");
        assertEq(rollup.minDeposit(), MIN_DEPOSIT, "minDeposit");
        assertEq(rollup.rewardPerSequence(), REWARD, "reward");
        assertEq(rollup.penaltyWrongProof(), PENALTY_WRONG, "penalty wrong");
        assertEq(rollup.penaltyNoProof(), PENALTY_NO_PROOF, "penalty no proof");
        assertEq(rollup.sequencer(), sequencer, "sequencer");
        assertEq(rollup.owner(), address(this), "owner");
        assertEq(address(rollup.verifier()), address(stub), "verifier");
        assertEq(address(rollup.minerDeposit()), address(dep), "deposit");
        assertEq(rollup.domain(), _domain(), "domain");
        assertLt(rollup.domain(), 1 << 248, "domain is 248 bits");
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
        _deploy(bytes32(R - 1), 20, sequencer, 0, 0); // largest valid root
    }

    function test_owner_setters() public {
        rollup.setWindowLengths(3, 4);
        assertEq(rollup.t1(), 3, "T1");
        assertEq(rollup.t2(), 4, "T2");
        rollup.setAmounts(5, 6, 7, 8);
        assertEq(rollup.minDeposit(), 5, "min");
        assertEq(rollup.rewardPerSequence(), 6, "reward");
        assertEq(rollup.penaltyWrongProof(), 7, "wrong");
        assertEq(rollup.penaltyNoProof(), 8, "noproof");
        rollup.setSequencer(alice);
        assertEq(rollup.sequencer(), alice, "sequencer");
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(0, 4);
        vm.expectRevert(ZkPowRollup.InvalidWindowLength.selector);
        rollup.setWindowLengths(3, 0);
        vm.expectRevert(Owned.ZeroAddress.selector);
        rollup.setSequencer(address(0));
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
        emit SequenceBatches(1, 3);
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
        (uint64 f, uint64 open, uint32 wid,,, bool verified) = rollup.sequence(4);
        assertEq(f, 5, "final of sequence 4");
        assertEq(open, 0, "not open");
        assertEq(wid, 1, "window 1");
        assertFalse(verified, "unverified");
        (f,,,,,) = rollup.sequence(2);
        assertEq(f, 0, "2 starts no sequence");
        (ZkPowRollup.WindowPhase phase,,,,) = rollup.windowStatus(4);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.NotOpen), "phase");
        (phase,,,,) = rollup.windowStatus(3);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.None), "phase none");
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
        bytes32 h = _hash(p, alice);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit WindowOpened(init, 1, uint64(block.number), uint64(block.number) + T1, uint64(block.number) + T1 + T2);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ProofHashSubmitted(init, fin, alice, h, 1);
        vm.prank(alice);
        rollup.submitProofHash(init, fin, h);
        (, uint64 open, uint32 wid, uint32 wt1, uint32 wt2,) = rollup.sequence(init);
        assertEq(open, block.number, "open block");
        assertEq(wid, 1, "window");
        assertEq(wt1, T1, "T1 snapshot");
        assertEq(wt2, T2, "T2 snapshot");
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, alice);
        assertEq(bytes32(ci.proofHashPrefix), h & bytes32(~uint256(type(uint64).max)), "hash prefix");
        assertEq(ci.windowId, 1, "commit window");
        assertFalse(ci.revealed || ci.valid || ci.punished || ci.rewarded, "flags");
        assertEq(ci.weight, 0, "weight");
        assertEq(rollup.proofHashOf(p, alice), h, "proofHashOf");
    }

    function test_commit_insufficientDeposit() public {
        (uint64 init, uint64 fin) = _post(1);
        address dave = address(0xDA5E);
        _fundMiner(dave, MIN_DEPOSIT - 1);
        vm.prank(dave);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InsufficientDeposit.selector, MIN_DEPOSIT - 1, MIN_DEPOSIT));
        rollup.submitProofHash(init, fin, bytes32(uint256(1)));
        // a pending withdrawal does not count
        vm.prank(carol);
        dep.requestWithdrawal(1);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InsufficientDeposit.selector, MIN_DEPOSIT - 1, MIN_DEPOSIT));
        rollup.submitProofHash(init, fin, bytes32(uint256(1)));
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

    function test_commit_notNextSequence() public {
        _post(2);
        (uint64 init2, uint64 fin2) = _post(1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotNextSequence.selector, init2, 1));
        rollup.submitProofHash(init2, fin2, bytes32(uint256(1)));
    }

    function test_commit_alreadyVerified() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, p), "valid");
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
    }

    function test_commit_windowLengthsFixedAtOpen() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        uint256 open = block.number;
        rollup.setWindowLengths(5, 6);
        vm.roll(open + 10); // past the new T1, within the old one
        _commit(bob, init, fin, hex"02");
        (ZkPowRollup.WindowPhase phase,, uint64 o, uint64 ce, uint64 re) = rollup.windowStatus(init);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.Commit), "still commit phase");
        assertEq(o, open, "open");
        assertEq(ce, open + T1, "commit end");
        assertEq(re, open + T1 + T2, "reveal end");
    }

    function test_commit_expiredWindowResetsAndReopens() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01"); // alice never reveals
        uint256 open = block.number;
        vm.roll(open + T1 + T2);
        (ZkPowRollup.WindowPhase phase,,,,) = rollup.windowStatus(init);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.Ended), "ended");
        bytes memory p = _proof(init, fin, GENESIS, bob);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit WindowReset(init, 1, 2);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit WindowOpened(init, 2, uint64(block.number), uint64(block.number) + T1, uint64(block.number) + T1 + T2);
        _commit(bob, init, fin, p);
        (, uint64 o, uint32 wid,,,) = rollup.sequence(init);
        assertEq(wid, 2, "window 2");
        assertEq(o, block.number, "reopened now");
        // alice's old commit is no commit of this window
        _rollToReveal(init);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotCommitter.selector, init, alice));
        rollup.verifyBatches(init, fin, bytes32(0), new bytes32[](0), hex"01");
        assertTrue(_reveal(bob, init, fin, p), "bob valid in window 2");
    }

    function test_commit_recommitAfterResetPunishesStaleCommit() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        vm.roll(block.number + T1 + T2);
        uint256 before = dep.depositOf(alice);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Punished(init, alice, ZkPowRollup.PunishReason.NoProof, PENALTY_NO_PROOF, PENALTY_NO_PROOF);
        _commit(alice, init, fin, hex"02");
        assertEq(dep.depositOf(alice), before - PENALTY_NO_PROOF, "stale commit punished");
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, alice);
        assertEq(ci.windowId, 2, "new commit in window 2");
        assertFalse(ci.punished, "new commit not punished");
    }

    function test_commit_recommitAfterPunishedStaleCommit_noDoublePenalty() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        vm.roll(block.number + T1 + T2);
        rollup.punishNoProof(init, alice);
        uint256 before = dep.depositOf(alice);
        _commit(alice, init, fin, hex"02");
        assertEq(dep.depositOf(alice), before, "no second penalty");
    }

    // ================================================================== verifyBatches

    function test_reveal_valid_advancesState() public {
        (uint64 init, uint64 fin) = _post(3);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit SequenceVerified(init, fin, newRoot, alice);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ProofAccepted(init, alice, 1, 2 ether, true);
        vm.prank(alice);
        assertTrue(rollup.verifyBatches(init, fin, newRoot, roots, p), "valid");
        assertEq(rollup.lastVerifiedBatch(), fin, "lastVerified");
        assertEq(rollup.stateRoot(), newRoot, "stateRoot");
        (bytes32 oldR, bytes32 newR, uint128 rew, uint128 tw) = rollup.verification(init);
        assertEq(oldR, GENESIS, "old root");
        assertEq(newR, newRoot, "new root");
        assertEq(rew, REWARD, "reward snapshot");
        assertEq(rollup.stateRootAt(0), GENESIS, "root after 0");
        assertEq(rollup.stateRootAt(fin), newRoot, "root after fin");
        assertEq(rollup.stateRootAt(fin - 1), bytes32(0), "intermediate roots are not stored");
        assertEq(tw, 2 ether, "total weight");
        (,,,,, bool verified) = rollup.sequence(init);
        assertTrue(verified, "verified");
        _checkValidCommit(init, alice, 2 ether);
        // the next sequence can now be committed, against the new root
        (uint64 init2, uint64 fin2) = _post(2);
        bytes memory p2 = _proof(init2, fin2, newRoot, bob);
        _commit(bob, init2, fin2, p2);
        _rollToReveal(init2);
        assertTrue(_reveal(bob, init2, fin2, p2), "second sequence");
        assertEq(rollup.lastVerifiedBatch(), fin2, "lastVerified 2");
    }

    function _checkValidCommit(uint64 init, address miner, uint256 expectedWeight) internal view {
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, miner);
        assertTrue(ci.revealed && ci.valid && !ci.punished, "flags");
        assertEq(ci.weight, expectedWeight, "weight = deposit");
        assertEq(bytes32(ci.proofHashPrefix), bytes32(0), "prefix cleared");
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        uint256 before = dep.depositOf(alice);
        bytes memory other = _proof(init, fin, GENESIS, bob); // valid for bob, not the committed one
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Punished(init, alice, ZkPowRollup.PunishReason.WrongProofHash, PENALTY_WRONG, PENALTY_WRONG);
        assertFalse(_reveal(alice, init, fin, other), "wrong hash returns false");
        assertEq(dep.depositOf(alice), before - PENALTY_WRONG, "slashed");
        assertEq(rollup.lastVerifiedBatch(), 0, "not verified");
        ZkPowRollup.CommitInfo memory ci = rollup.commitOf(init, alice);
        assertTrue(ci.revealed && ci.punished && !ci.valid, "flags");
    }

    function test_reveal_invalidProof_penalisedNoRevert() public {
        (uint64 init, uint64 fin) = _post(2);
        bytes memory p = _proof(init, fin, GENESIS, bob); // a proof for bob's address, committed by alice
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        uint256 before = dep.depositOf(alice);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Punished(init, alice, ZkPowRollup.PunishReason.InvalidProof, PENALTY_WRONG, PENALTY_WRONG);
        assertFalse(_reveal(alice, init, fin, p), "invalid returns false");
        assertEq(dep.depositOf(alice), before - PENALTY_WRONG, "slashed");
        assertEq(rollup.stateRoot(), GENESIS, "state unchanged");
    }

    function test_reveal_wrongRoots_invalid() public {
        (uint64 init, uint64 fin) = _post(3);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        roots[1] = bytes32(uint256(roots[1]) ^ 1);
        vm.prank(alice);
        assertFalse(rollup.verifyBatches(init, fin, newRoot, roots, p), "wrong intermediate root");
    }

    function test_reveal_wrongRootCount_invalid() public {
        (uint64 init, uint64 fin) = _post(3);
        bytes memory p = _proof(init, fin, GENESIS, alice);
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        stub.setMode(StubVerifierForRuleTests.Mode.Revert);
        uint256 before = dep.depositOf(alice);
        assertFalse(_reveal(alice, init, fin, p), "revert = invalid");
        assertEq(dep.depositOf(alice), before - PENALTY_WRONG, "slashed");
    }

    function test_reveal_verifierOutOfGas_revertsTx() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        stub.setMode(StubVerifierForRuleTests.Mode.RevertInsufficientGas);
        uint256 need = stub.verifyGas(1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.InsufficientGasForVerification.selector, need));
        rollup.verifyBatches(init, fin, _root(fin), new bytes32[](0), p);
    }

    function test_reveal_lowGasLimit_revertsInsteadOfPenalty() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
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
        bytes memory pa = _proof(init, fin, GENESIS, alice);
        bytes memory pb = _proof(init, fin, GENESIS, bob);
        _commit(alice, init, fin, pa);
        _commit(bob, init, fin, pb);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "alice first");
        bytes32 rootAfter = rollup.stateRoot();
        // another sequence gets posted meanwhile; bob's late proof still verifies against the old root
        _post(1);
        vm.roll(block.number + 5);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit ProofAccepted(init, bob, 1, 6 ether, false);
        assertTrue(_reveal(bob, init, fin, pb), "bob late");
        assertEq(rollup.stateRoot(), rootAfter, "state unchanged by late proof");
        assertEq(rollup.lastVerifiedBatch(), fin, "lastVerified unchanged");
        (,,, uint128 tw) = rollup.verification(init);
        assertEq(tw, 8 ether, "total weight");
    }

    function test_reveal_lateProofWithOtherNewRoot_invalid() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory pa = _proof(init, fin, GENESIS, alice);
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
        bytes memory pa = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, pa);
        _commit(bob, init, fin, pa); // bob copies alice's proof (he cannot know it yet, but even so)
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "alice");
        assertFalse(_reveal(bob, init, fin, pa), "bob's copy is bound to alice");
    }

    function test_reveal_zeroWeightStillRewardedShare() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, carol);
        _commit(carol, init, fin, p);
        vm.prank(carol);
        dep.requestWithdrawal(1 ether); // depositOf = 0 at reveal time
        _rollToReveal(init);
        assertTrue(_reveal(carol, init, fin, p), "valid");
        assertEq(rollup.commitOf(init, carol).weight, 1, "minimum weight");
        _rollToEnd(init);
        vm.prank(carol);
        assertEq(rollup.claimReward(init), REWARD, "sole revealer gets all");
    }

    // ================================================================== rewards

    function test_claim_proRata() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory pa = _proof(init, fin, GENESIS, alice);
        bytes memory pb = _proof(init, fin, GENESIS, bob);
        bytes memory pc = _proof(init, fin, GENESIS, carol);
        _commit(alice, init, fin, pa);
        _commit(bob, init, fin, pb);
        _commit(carol, init, fin, hex"00"); // carol commits garbage
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "alice");
        assertTrue(_reveal(bob, init, fin, pb), "bob");
        assertFalse(_reveal(carol, init, fin, pc), "carol wrong hash");
        _rollToEnd(init);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Rewarded(init, alice, uint256(REWARD) * 2 / 8);
        vm.prank(alice);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 2 / 8, "alice 2/8");
        vm.prank(bob);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 6 / 8, "bob 6/8");
        (uint256 claimable,) = dep.rewardsOf(alice);
        assertEq(claimable, uint256(REWARD) * 2 / 8, "credited in MinerDeposit");
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NoValidProof.selector, init, carol));
        rollup.claimReward(init);
    }

    function test_claim_beforeEnd_reverts() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        _rollToEnd(init);
        vm.startPrank(alice);
        rollup.claimReward(init);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.AlreadyRewarded.selector, init, alice));
        rollup.claimReward(init);
        vm.stopPrank();
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
        bytes memory p = _proof(init, fin, GENESIS, alice);
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
        bytes memory p2 = _proof(init2, fin2, rollup.stateRoot(), alice);
        _commit(alice, init2, fin2, p2);
        _rollToReveal(init2);
        _reveal(alice, init2, fin2, p2);
        _rollToEnd(init2);
        vm.prank(alice);
        assertEq(rollup.claimReward(init2), 5 ether, "new reward paid");
    }

    function test_claim_poolShort_recordsOwed() public {
        MinerDeposit d2 = new MinerDeposit(address(this), UNBONDING);
        ZkPowRollup r2 = new ZkPowRollup(
            IMinerDeposit(address(d2)), IGroth16BatchVerifier(address(stub)), sequencer, GENESIS, BATCH_SIZE, 0, 0, 0, REWARD, 0, 0
        );
        d2.registerRollup(address(r2));
        rollup = r2; // the helpers use `rollup`
        d2.fundRewards{value: REWARD / 4}();
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        _rollToEnd(init);
        vm.prank(alice);
        r2.claimReward(init);
        (uint256 claimable, uint256 owed) = d2.rewardsOf(alice);
        assertEq(claimable, REWARD / 4, "what the pool had");
        assertEq(owed, REWARD - REWARD / 4, "owed");
    }

    // ================================================================== punishNoProof / resetWindow

    function test_punishNoProof() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _commit(bob, init, fin, hex"01"); // bob never reveals
        uint256 open = block.number;
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        vm.roll(open + T1 + T2 - 1);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotEnded.selector, init, open + T1 + T2));
        rollup.punishNoProof(init, bob);
        vm.roll(open + T1 + T2);
        uint256 before = dep.depositOf(bob);
        vm.expectEmit(true, true, false, true, address(rollup));
        emit Punished(init, bob, ZkPowRollup.PunishReason.NoProof, PENALTY_NO_PROOF, PENALTY_NO_PROOF);
        vm.prank(carol); // anyone
        rollup.punishNoProof(init, bob);
        assertEq(dep.depositOf(bob), before - PENALTY_NO_PROOF, "slashed");
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotPunishable.selector, init, bob));
        rollup.punishNoProof(init, bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotPunishable.selector, init, alice));
        rollup.punishNoProof(init, alice); // valid proof
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotPunishable.selector, init, carol));
        rollup.punishNoProof(init, carol); // never committed
    }

    function test_punishNoProof_afterWrongProof_notTwice() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        _rollToReveal(init);
        assertFalse(_reveal(alice, init, fin, hex"02"), "wrong hash");
        _rollToEnd(init);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotPunishable.selector, init, alice));
        rollup.punishNoProof(init, alice);
    }

    function test_punishNoProof_staleWindowAfterReset() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(alice, init, fin, hex"01");
        vm.roll(block.number + T1 + T2);
        _commit(bob, init, fin, hex"02"); // resets, window 2 is open
        rollup.punishNoProof(init, alice); // alice's window-1 commit ended without a proof
        assertTrue(rollup.commitOf(init, alice).punished, "punished");
    }

    function test_punish_debtWhenDepositShort() public {
        (uint64 init, uint64 fin) = _post(1);
        _commit(carol, init, fin, hex"01");
        rollup.setAmounts(MIN_DEPOSIT, REWARD, PENALTY_WRONG, 1.5 ether);
        _rollToEnd(init);
        rollup.punishNoProof(init, carol);
        assertEq(dep.depositOf(carol), 0, "all taken");
        assertEq(dep.debtOf(carol), 0.5 ether, "debt recorded");
    }

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
        emit WindowReset(init, 1, 2);
        rollup.resetWindow(init);
        (ZkPowRollup.WindowPhase phase, uint32 wid,,,) = rollup.windowStatus(init);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.NotOpen), "not open");
        assertEq(wid, 2, "window 2");
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, init));
        rollup.resetWindow(init);
        // the next commit opens window 2 now
        bytes memory p = _proof(init, fin, GENESIS, bob);
        _commit(bob, init, fin, p);
        assertEq(_openBlock(init), block.number, "opened");
        _rollToReveal(init);
        assertTrue(_reveal(bob, init, fin, p), "valid");
    }

    function test_resetWindow_verifiedNeverResets() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        _rollToReveal(init);
        _reveal(alice, init, fin, p);
        _rollToEnd(init);
        vm.roll(block.number + 1000);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, init));
        rollup.resetWindow(init);
        (ZkPowRollup.WindowPhase phase,,,,) = rollup.windowStatus(init);
        assertEq(uint256(phase), uint256(ZkPowRollup.WindowPhase.Ended), "ended");
    }

    function test_resetWindow_unknown() public {
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, 1));
        rollup.resetWindow(1);
    }

    // ================================================================== window arithmetic (fuzz)

    /// For any T1, T2 and any block offset k from the opening block: commits are accepted iff
    /// k < T1 (or the window expired: k >= T1 + T2, which resets it), reveals iff T1 <= k < T1 + T2,
    /// claims and no-proof penalties iff k >= T1 + T2.
    function testFuzz_windowBoundaries(uint32 t1Raw, uint32 t2Raw, uint32 kRaw) public {
        uint32 t1 = uint32(bound(t1Raw, 1, 500));
        uint32 t2 = uint32(bound(t2Raw, 1, 500));
        uint256 k = bound(kRaw, 0, uint256(t1) + t2 + 10);
        rollup.setWindowLengths(t1, t2);
        (uint64 init, uint64 fin) = _post(1);
        bytes memory p = _proof(init, fin, GENESIS, alice);
        _commit(alice, init, fin, p);
        uint256 open = block.number;
        vm.roll(open + k);
        uint256 end = open + t1 + t2;
        bool commitPhase = k < t1;
        bool revealPhase = !commitPhase && block.number < end;

        (ZkPowRollup.WindowPhase phase,,, uint64 ce, uint64 re) = rollup.windowStatus(init);
        assertEq(ce, open + t1, "commitEnd");
        assertEq(re, end, "revealEnd");
        ZkPowRollup.WindowPhase expected = commitPhase
            ? ZkPowRollup.WindowPhase.Commit
            : revealPhase ? ZkPowRollup.WindowPhase.Reveal : ZkPowRollup.WindowPhase.Ended;
        assertEq(uint256(phase), uint256(expected), "phase");

        uint256 snap = vm.snapshotState();
        _checkCommitAt(init, fin, commitPhase || !revealPhase);
        vm.revertToState(snap);
        _checkRevealAt(init, fin, p, revealPhase, end);
        vm.revertToState(snap);
        (bool ok,) = address(rollup).call(abi.encodeCall(ZkPowRollup.punishNoProof, (init, alice)));
        assertEq(ok, block.number >= end, "punishable iff ended");
    }

    function _checkCommitAt(uint64 init, uint64 fin, bool accepted) internal {
        vm.prank(bob);
        (bool ok,) = address(rollup).call(abi.encodeCall(ZkPowRollup.submitProofHash, (init, fin, bytes32(uint256(9)))));
        assertEq(ok, accepted, "commit accepted iff commit phase or expired");
    }

    function _checkRevealAt(uint64 init, uint64 fin, bytes memory p, bool accepted, uint256 end) internal {
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        vm.prank(alice);
        (bool ok,) = address(rollup).call(abi.encodeCall(ZkPowRollup.verifyBatches, (init, fin, newRoot, roots, p)));
        assertEq(ok, accepted, "reveal accepted iff reveal phase");
        if (!ok) return;
        vm.prank(alice);
        (bool claimOk,) = address(rollup).call(abi.encodeCall(ZkPowRollup.claimReward, (init)));
        assertFalse(claimOk, "no claim before the end");
        vm.roll(end);
        vm.prank(alice);
        (claimOk,) = address(rollup).call(abi.encodeCall(ZkPowRollup.claimReward, (init)));
        assertTrue(claimOk, "claim at the end");
    }

    // ================================================================== gas

    function test_gas_commitUnder70k() public {
        (uint64 init, uint64 fin) = _post(1);
        // measured as a transaction: 21000 + calldata + execution of the call
        bytes memory data = abi.encodeCall(ZkPowRollup.submitProofHash, (init, fin, keccak256("x")));
        uint256 calldataGas;
        for (uint256 k; k < data.length; ++k) {
            calldataGas += data[k] == 0 ? 4 : 16;
        }
        vm.prank(alice);
        uint256 g0 = gasleft();
        (bool ok,) = address(rollup).call(data);
        uint256 exec = g0 - gasleft();
        assertTrue(ok, "commit");
        uint256 txGas = 21000 + calldataGas + exec;
        log("submitProofHash tx gas (opening commit, in-test estimate)", txGas);
        assertLt(txGas, 70000, "commit gas");
    }
}
