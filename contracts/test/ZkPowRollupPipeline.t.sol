// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RollupTestBase} from "./utils/RollupTestBase.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";

/// Pipelined windows: every posted, unverified sequence takes commits; the reveal phase of a
/// window opened in block O starts at S = max(O + T1, block in which the predecessor sequence was
/// verified) and runs S <= b < S + T2; nothing ends, resets or is settled before it ran.
contract ZkPowRollupPipelineTest is RollupTestBase {
    ZkPowRollup.WindowPhase internal constant NOT_OPEN = ZkPowRollup.WindowPhase.NotOpen;
    ZkPowRollup.WindowPhase internal constant COMMIT = ZkPowRollup.WindowPhase.Commit;
    ZkPowRollup.WindowPhase internal constant REVEAL = ZkPowRollup.WindowPhase.Reveal;
    ZkPowRollup.WindowPhase internal constant ENDED = ZkPowRollup.WindowPhase.Ended;
    ZkPowRollup.WindowPhase internal constant AWAITING = ZkPowRollup.WindowPhase.AwaitingPredecessor;

    function test_phaseEnumValues() public pure {
        assertEq(uint256(ZkPowRollup.WindowPhase.None), 0, "None");
        assertEq(uint256(NOT_OPEN), 1, "NotOpen");
        assertEq(uint256(COMMIT), 2, "Commit");
        assertEq(uint256(REVEAL), 3, "Reveal");
        assertEq(uint256(ENDED), 4, "Ended");
        assertEq(uint256(AWAITING), 5, "AwaitingPredecessor");
    }

    /// Posts `k` one-batch sequences (batches 1..k).
    function _postSingles(uint256 k) internal {
        for (uint256 i; i < k; ++i) {
            _post(1);
        }
    }

    function _checkStatus(uint64 init, ZkPowRollup.WindowPhase phase, uint256 ce, uint256 rs, uint256 re, string memory m)
        internal
        view
    {
        (ZkPowRollup.WindowPhase p, uint64 c, uint64 s, uint64 e) = _statusOn(rollup, init);
        assertEq(uint256(p), uint256(phase), string.concat(m, ": phase"));
        assertEq(c, ce, string.concat(m, ": commitEnd"));
        assertEq(s, rs, string.concat(m, ": revealStart"));
        assertEq(e, re, string.concat(m, ": revealEnd"));
    }

    // ------------------------------------------------------------------ commits

    function test_commitsOnSeveralSequencesAtOnce() public {
        _postSingles(3);
        uint256 o = block.number;
        // alice commits to all three in one block, bob to 3 and 2 (in that order)
        for (uint64 b = 1; b <= 3; ++b) {
            vm.expectEmit(true, false, false, true, address(rollup));
            emit ZkPowRollup.WindowOpened(b, 1, uint64(o), uint64(o + T1));
            _commit(alice, b, b, _proof(b, b, alice));
        }
        _commit(bob, 3, 3, _proof(3, 3, bob));
        vm.roll(o + 4);
        _commit(bob, 2, 2, _proof(2, 2, bob));
        assertEq(dep.lockedOf(alice), 3 * uint256(BOND), "three bonds");
        assertEq(dep.lockedOf(bob), 2 * uint256(BOND), "two bonds");
        _checkStatus(1, COMMIT, o + T1, o + T1, o + T1 + T2, "seq 1 (predecessor: genesis)");
        _checkStatus(2, COMMIT, o + T1, 0, 0, "seq 2 (predecessor unverified)");
        _checkStatus(3, COMMIT, o + T1, 0, 0, "seq 3");
        vm.roll(o + T1);
        _checkStatus(1, REVEAL, o + T1, o + T1, o + T1 + T2, "seq 1 reveal");
        _checkStatus(2, AWAITING, o + T1, 0, 0, "seq 2 awaits 1");
        _checkStatus(3, AWAITING, o + T1, 0, 0, "seq 3 awaits 2");
        // and they all verify in order
        for (uint64 b = 1; b <= 3; ++b) {
            assertTrue(_reveal(alice, b, b, _proof(b, b, alice)), "alice valid");
        }
        assertTrue(_reveal(bob, 2, 2, _proof(2, 2, bob)), "bob 2");
        assertTrue(_reveal(bob, 3, 3, _proof(3, 3, bob)), "bob 3");
        assertEq(rollup.lastVerifiedBatch(), 3, "all verified");
        assertEq(dep.lockedOf(alice) + dep.lockedOf(bob), 0, "all bonds released");
    }

    // ------------------------------------------------------------------ reveal start

    /// Predecessor verified before O + T1: the reveal phase starts at O + T1.
    function test_revealStart_predecessorVerifiedEarly() public {
        _postSingles(2);
        bytes memory p1 = _proof(1, 1, alice);
        _commit(alice, 1, 1, p1);
        vm.roll(block.number + T1); // sequence 1 in its reveal phase
        assertTrue(_reveal(alice, 1, 1, p1), "seq 1 verified");
        uint256 v = block.number;
        vm.roll(v + 3);
        uint256 o2 = block.number;
        bytes memory p2 = _proof(2, 2, bob);
        _commit(bob, 2, 2, p2);
        _checkStatus(2, COMMIT, o2 + T1, o2 + T1, o2 + T1 + T2, "known at once");
        vm.roll(o2 + T1 - 1);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.RevealTooEarly.selector, 2, o2 + T1));
        rollup.verifyBatches(2, 2, _root(2), new bytes32[](0), p2);
        vm.roll(o2 + T1);
        assertTrue(_reveal(bob, 2, 2, p2), "reveal at O + T1");
    }

    /// Predecessor verified after the successor's commit phase (its T1) ended: the reveal phase
    /// starts in the block of that verification; before it, reveals revert PredecessorNotVerified.
    function test_revealStart_predecessorVerifiedLate() public {
        _postSingles(2);
        uint256 o2 = block.number;
        bytes memory p2 = _proof(2, 2, bob);
        _commit(bob, 2, 2, p2);
        vm.roll(o2 + 15);
        uint256 o1 = block.number; // sequence 1 opens later than 2
        bytes memory p1 = _proof(1, 1, alice);
        _commit(alice, 1, 1, p1);
        vm.roll(o2 + T1);
        _checkStatus(2, AWAITING, o2 + T1, 0, 0, "awaiting at O2 + T1");
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.PredecessorNotVerified.selector, 2));
        rollup.verifyBatches(2, 2, _root(2), new bytes32[](0), p2);
        vm.roll(o1 + T1 + 4); // well after sequence 2's T1
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.PredecessorNotVerified.selector, 2));
        rollup.verifyBatches(2, 2, _root(2), new bytes32[](0), p2);
        assertTrue(_reveal(alice, 1, 1, p1), "seq 1 verified late");
        uint256 v = block.number;
        assertEq(rollup.verifiedAtBlock(1), v, "verifiedAtBlock");
        assertGt(v, o2 + T1, "after sequence 2's commit phase");
        _checkStatus(2, REVEAL, o2 + T1, v, v + T2, "starts at the verification block");
        vm.roll(v + T2 - 1);
        assertTrue(_reveal(bob, 2, 2, p2), "valid in the last block of the late reveal phase");
        vm.roll(v + T2);
        _checkStatus(2, ENDED, o2 + T1, v, v + T2, "ended");
    }

    function test_revealStart_lateRevealPhaseOverAtSPlusT2() public {
        _postSingles(2);
        bytes memory p2 = _proof(2, 2, bob);
        _commit(bob, 2, 2, p2);
        vm.roll(block.number + 40);
        bytes memory p1 = _proof(1, 1, alice);
        _commit(alice, 1, 1, p1);
        _rollToReveal(1);
        _reveal(alice, 1, 1, p1);
        uint256 v = block.number;
        vm.roll(v + T2);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.RevealPhaseOver.selector, 2, v + T2));
        rollup.verifyBatches(2, 2, _root(2), new bytes32[](0), p2);
    }

    /// Several sequences verified in consecutive blocks: each one's reveal phase starts at
    /// max(O + T1, its predecessor's verification block).
    function test_verifiedInConsecutiveBlocks() public {
        _postSingles(3);
        uint256 o = block.number;
        for (uint64 b = 1; b <= 3; ++b) {
            _commit(alice, b, b, _proof(b, b, alice));
        }
        vm.roll(o + T1);
        assertTrue(_reveal(alice, 1, 1, _proof(1, 1, alice)), "seq 1 at O + T1");
        _checkStatus(2, REVEAL, o + T1, o + T1, o + T1 + T2, "seq 2 starts at O + T1");
        vm.roll(o + T1 + 1);
        assertTrue(_reveal(alice, 2, 2, _proof(2, 2, alice)), "seq 2 at O + T1 + 1");
        _checkStatus(3, REVEAL, o + T1, o + T1 + 1, o + T1 + 1 + T2, "seq 3 starts a block later");
        vm.roll(o + T1 + 2);
        assertTrue(_reveal(alice, 3, 3, _proof(3, 3, alice)), "seq 3 at O + T1 + 2");
        assertEq(rollup.verifiedAtBlock(1), o + T1, "v1");
        assertEq(rollup.verifiedAtBlock(2), o + T1 + 1, "v2");
        assertEq(rollup.verifiedAtBlock(3), o + T1 + 2, "v3");
        // sequences 1 and 2 started their reveal phases at O + T1, sequence 3 a block later
        vm.roll(o + T1 + T2);
        vm.startPrank(alice);
        rollup.claimReward(1);
        rollup.claimReward(2);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotEnded.selector, 3, o + T1 + 1 + T2));
        rollup.claimReward(3);
        vm.roll(o + T1 + 1 + T2);
        rollup.claimReward(3);
        vm.stopPrank();
        assertEq(dep.rewardsOf(alice), 3 * uint256(REWARD), "three rewards");
    }

    /// Several sequences verified in one block: a verification opens the successor's reveal
    /// phase in the same block.
    function test_verifiedInOneBlock() public {
        _postSingles(4);
        uint256 o = block.number;
        for (uint64 b = 1; b <= 4; ++b) {
            _commit(bob, b, b, _proof(b, b, bob));
        }
        vm.roll(o + T1);
        for (uint64 b = 1; b <= 4; ++b) {
            _checkStatus(b, REVEAL, o + T1, o + T1, o + T1 + T2, "reveal phase opened in this block");
            assertTrue(_reveal(bob, b, b, _proof(b, b, bob)), "valid");
            assertEq(rollup.verifiedAtBlock(b), o + T1, "same block");
        }
        assertEq(rollup.lastVerifiedBatch(), 4, "four in one block");
        assertEq(rollup.stateRoot(), _root(4), "root after 4");
    }

    // ------------------------------------------------------------------ nothing before the reveal phase

    /// However long the predecessor stays unverified, the window neither ends nor resets, nobody
    /// is settled, and no one else can commit: the reveal phase has not run.
    function test_nothingEndsBeforeRevealPhaseRan() public {
        _postSingles(2);
        uint256 o2 = block.number;
        bytes memory p2 = _proof(2, 2, bob);
        _commit(bob, 2, 2, p2);
        _commit(carol, 2, 2, hex"0bad"); // a junk commit that will never be revealed
        vm.roll(o2 + 10 * (T1 + T2));
        _checkStatus(2, AWAITING, o2 + T1, 0, 0, "still awaiting");
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotEnded.selector, 2, NEVER));
        rollup.settleNoProof(2, carol);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, 2));
        rollup.resetWindow(2);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.CommitPhaseOver.selector, 2, o2 + T1));
        rollup.submitProofHash(2, 2, bytes32(uint256(5)));
        vm.prank(carol); // nor recommit to get out of the junk commit
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.CommitPhaseOver.selector, 2, o2 + T1));
        rollup.submitProofHash(2, 2, bytes32(uint256(5)));
        assertEq(dep.lockedOf(carol), BOND, "bond stays locked meanwhile");
        assertEq(dep.depositOf(carol), 1 ether, "not punished");

        // sequence 1 verified now: the reveal phase of 2 runs [v, v + T2)
        bytes memory p1 = _proof(1, 1, alice);
        _commit(alice, 1, 1, p1);
        _rollToReveal(1);
        _reveal(alice, 1, 1, p1);
        uint256 v = block.number;
        vm.roll(v + T2 - 1);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotEnded.selector, 2, v + T2));
        rollup.settleNoProof(2, carol);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.WindowNotExpired.selector, 2));
        rollup.resetWindow(2);
        assertTrue(_reveal(bob, 2, 2, p2), "bob in time");
        vm.roll(v + T2);
        rollup.settleNoProof(2, carol);
        assertEq(dep.depositOf(carol), 1 ether - PENALTY_NO_PROOF, "settled after the reveal phase");
    }

    /// An unverified window whose predecessor is verified only late resets only after S + T2.
    function test_resetOnlyAfterLateRevealPhase() public {
        _postSingles(2);
        uint256 o2 = block.number;
        _commit(carol, 2, 2, hex"0bad");
        vm.roll(o2 + 50);
        bytes memory p1 = _proof(1, 1, alice);
        _commit(alice, 1, 1, p1);
        _rollToReveal(1);
        _reveal(alice, 1, 1, p1);
        uint256 v = block.number;
        vm.roll(v + T2 - 1);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.CommitPhaseOver.selector, 2, o2 + T1));
        rollup.submitProofHash(2, 2, bytes32(uint256(7)));
        vm.roll(v + T2);
        vm.expectEmit(true, false, false, true, address(rollup));
        emit ZkPowRollup.WindowReset(2, 1, 2);
        _commit(bob, 2, 2, _proof(2, 2, bob));
        _checkStatus(2, COMMIT, v + T2 + T1, v + T2 + T1, v + T2 + T1 + T2, "window 2, predecessor long verified");
    }

    /// The successor waits while its predecessor goes through a reset and a second window.
    function test_successorWaitsThroughPredecessorReset() public {
        _postSingles(2);
        uint256 o = block.number;
        _commit(carol, 1, 1, hex"0bad"); // window 1 of sequence 1: junk only
        bytes memory p2 = _proof(2, 2, bob);
        _commit(bob, 2, 2, p2);
        vm.roll(o + T1 + T2);
        _checkStatus(1, ENDED, o + T1, o + T1, o + T1 + T2, "seq 1 window 1 ended");
        _checkStatus(2, AWAITING, o + T1, 0, 0, "seq 2 waits");
        bytes memory p1 = _proof(1, 1, alice);
        _commit(alice, 1, 1, p1); // resets sequence 1, window 2
        vm.roll(block.number + T1);
        _checkStatus(2, AWAITING, o + T1, 0, 0, "still waits");
        assertTrue(_reveal(alice, 1, 1, p1), "seq 1 verified in window 2");
        uint256 v = block.number;
        _checkStatus(2, REVEAL, o + T1, v, v + T2, "seq 2 reveal phase opens");
        assertTrue(_reveal(bob, 2, 2, p2), "seq 2 verified");
    }

    // ------------------------------------------------------------------ fuzz: window arithmetic

    struct Case {
        uint32 t1a; // terms of sequence 1
        uint32 t2a;
        uint32 t1b; // terms of sequence 2
        uint32 t2b;
        uint256 base; // first block after posting
        uint256 o1; // sequence 1 opens (alice commits)
        uint256 o2; // sequence 2 opens (bob commits)
        bool verify1; // sequence 1 gets verified
        uint256 p; // block in which sequence 1 is verified (in its reveal phase)
        uint256 q; // block probed
    }

    /// Random window lengths per sequence, random open blocks, the predecessor verified at an
    /// arbitrary block of its reveal phase (or never), and a random probe block. Events that fall
    /// on or before the probe block happen (in block order); then windowStatus of sequence 2 and
    /// the outcome of every call are compared with the rule computed here.
    function testFuzz_windowArithmetic(
        uint32 t1a,
        uint32 t2a,
        uint32 t1b,
        uint32 t2b,
        uint16 o1Raw,
        uint16 o2Raw,
        uint16 pRaw,
        uint16 qRaw,
        bool verify1
    ) public {
        Case memory c = _case(t1a, t2a, t1b, t2b, o1Raw, o2Raw);
        c.verify1 = verify1;
        c.p = c.o1 + c.t1a + bound(pRaw, 0, c.t2a - 1);
        c.q = c.base + bound(qRaw, 0, 400);
        _play(c);
        _probe(c);
    }

    function _case(uint32 t1a, uint32 t2a, uint32 t1b, uint32 t2b, uint16 o1Raw, uint16 o2Raw)
        internal
        returns (Case memory c)
    {
        c.t1a = uint32(bound(t1a, 1, 60));
        c.t2a = uint32(bound(t2a, 1, 60));
        c.t1b = uint32(bound(t1b, 1, 60));
        c.t2b = uint32(bound(t2b, 1, 60));
        rollup.setWindowLengths(c.t1a, c.t2a);
        _post(1);
        rollup.setWindowLengths(c.t1b, c.t2b);
        _post(1);
        rollup.setWindowLengths(99, 99); // terms of later sequences must not matter
        c.base = block.number;
        c.o1 = c.base + bound(o1Raw, 0, 150);
        c.o2 = c.base + bound(o2Raw, 0, 150);
    }

    /// Runs the events with block <= q in block order (same block: 1 opens, 2 opens, 1 verified).
    function _play(Case memory c) internal {
        bool opened1;
        bool opened2;
        bool verified1;
        for (uint256 step; step < 3; ++step) {
            uint256 next = type(uint256).max;
            uint256 which;
            if (!opened1 && c.o1 < next) (next, which) = (c.o1, 1);
            if (!opened2 && c.o2 < next) (next, which) = (c.o2, 2);
            if (opened1 && c.verify1 && !verified1 && c.p < next) (next, which) = (c.p, 3);
            if (next > c.q) return;
            vm.roll(next);
            if (which == 1) {
                _commit(alice, 1, 1, _proof(1, 1, alice));
                opened1 = true;
            } else if (which == 2) {
                _commit(bob, 2, 2, _proof(2, 2, bob));
                opened2 = true;
            } else {
                assertTrue(_reveal(alice, 1, 1, _proof(1, 1, alice)), "predecessor verified");
                verified1 = true;
            }
        }
    }

    function _probe(Case memory c) internal {
        vm.roll(c.q);
        bool open = c.o2 <= c.q;
        bool predVerified = c.verify1 && c.o1 <= c.q && c.p <= c.q;
        uint256 commitEnd = c.o2 + c.t1b;
        uint256 start = commitEnd > c.p ? commitEnd : c.p;
        uint256 end = start + c.t2b;

        (ZkPowRollup.WindowPhase phase, uint64 ce, uint64 rs, uint64 re) = _statusOn(rollup, 2);
        ZkPowRollup.WindowPhase expected;
        if (!open) expected = NOT_OPEN;
        else if (c.q < commitEnd) expected = COMMIT;
        else if (!predVerified) expected = AWAITING;
        else if (c.q < end) expected = REVEAL;
        else expected = ENDED;
        assertEq(uint256(phase), uint256(expected), "phase");
        assertEq(ce, open ? commitEnd : 0, "commitEnd");
        assertEq(rs, open && predVerified ? start : 0, "revealStart");
        assertEq(re, open && predVerified ? end : 0, "revealEnd");
        if (!open) return;

        bool ended = expected == ENDED;
        uint256 snap = vm.snapshotState();
        // a commit by someone else: in the commit phase, or after the end (resets the window)
        vm.prank(carol);
        (bool ok,) = address(rollup).call(abi.encodeCall(ZkPowRollup.submitProofHash, (2, 2, bytes32(uint256(9)))));
        assertEq(ok, expected == COMMIT || ended, "commit accepted iff commit phase or ended");
        vm.revertToState(snap);
        (ok,) = address(rollup).call(abi.encodeCall(ZkPowRollup.settleNoProof, (2, bob)));
        assertEq(ok, ended, "settleable iff ended");
        vm.revertToState(snap);
        (ok,) = address(rollup).call(abi.encodeCall(ZkPowRollup.resetWindow, (2)));
        assertEq(ok, ended, "resettable iff ended");
        vm.revertToState(snap);
        _probeReveal(c, expected, commitEnd, end);
        vm.revertToState(snap);
    }

    function _probeReveal(Case memory c, ZkPowRollup.WindowPhase expected, uint256 commitEnd, uint256 end) internal {
        bytes memory p2 = _proof(2, 2, bob);
        vm.prank(bob);
        (bool ok, bytes memory ret) =
            address(rollup).call(abi.encodeCall(ZkPowRollup.verifyBatches, (2, 2, _root(2), new bytes32[](0), p2)));
        assertEq(ok, expected == REVEAL, "reveal accepted iff reveal phase");
        if (expected == COMMIT) {
            assertEq(ret, abi.encodeWithSelector(ZkPowRollup.RevealTooEarly.selector, 2, commitEnd), "too early");
        } else if (expected == AWAITING) {
            assertEq(ret, abi.encodeWithSelector(ZkPowRollup.PredecessorNotVerified.selector, 2), "awaiting");
        } else if (expected == ENDED) {
            assertEq(ret, abi.encodeWithSelector(ZkPowRollup.RevealPhaseOver.selector, 2, end), "over");
        }
        if (!ok) return;
        assertTrue(abi.decode(ret, (bool)), "valid");
        assertEq(rollup.verifiedAtBlock(2), c.q, "verified now");
        vm.prank(bob);
        (bool claimOk,) = address(rollup).call(abi.encodeCall(ZkPowRollup.claimReward, (2)));
        assertFalse(claimOk, "no claim before the end");
        vm.roll(end - 1);
        vm.prank(bob);
        (claimOk,) = address(rollup).call(abi.encodeCall(ZkPowRollup.claimReward, (2)));
        assertFalse(claimOk, "no claim in the last reveal block");
        vm.roll(end);
        vm.prank(bob);
        (claimOk,) = address(rollup).call(abi.encodeCall(ZkPowRollup.claimReward, (2)));
        assertTrue(claimOk, "claim at the end");
    }
}
