// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {StubVerifierForRuleTests} from "./utils/StubVerifierForRuleTests.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {IMinerDeposit} from "../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../src/interfaces/IGroth16BatchVerifier.sol";

/// Drives the rollup with random actions of two honest miners (always commit a valid proof and
/// reveal it in the reveal phase), a cheating miner (wrong hashes, proofs for other addresses,
/// sometimes a valid proof) and a lazy miner (commits, rarely reveals), plus the sequencer,
/// block advances, claims, no-proof penalties, window resets and deposits/withdrawals.
contract RollupHandler is Test {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 internal constant BATCH_SIZE = 20;

    ZkPowRollup public rollup;
    MinerDeposit public dep;
    StubVerifierForRuleTests public stub;
    address public sequencer;
    address[4] public miners; // 0, 1 honest; 2 cheater; 3 lazy

    struct Pending {
        uint64 init;
        address miner;
        bytes proof;
    }

    Pending[] internal pendingHonest; // honest commits not yet revealed
    mapping(uint64 => mapping(address => bytes)) internal committedProof;

    // ghost state
    uint64 public maxVerified;
    bool public verifiedDecreased;
    bool public rewardWithoutValidProof;
    bool public honestRevealRejected;
    uint256 public rewardsClaimedTotal;
    uint256 public rewardsAvailableTotal; // sum of rewards of verified sequences
    mapping(uint64 => mapping(address => bool)) public ghostValid;
    uint64[] public touchedInits;
    mapping(uint64 => bool) internal touched;
    mapping(uint64 => bool) internal counted;
    uint256 public calls;
    // coverage counters
    uint256 public honestReveals;
    uint256 public otherValidReveals;
    uint256 public otherInvalidReveals;
    uint256 public claimsPaid;
    uint256 public noProofPenalties;
    uint256 public resets;
    uint256 public commitsOk;
    uint256 public advances;

    constructor(ZkPowRollup rollup_, MinerDeposit dep_, StubVerifierForRuleTests stub_, address sequencer_, address[4] memory miners_) {
        rollup = rollup_;
        dep = dep_;
        stub = stub_;
        sequencer = sequencer_;
        miners = miners_;
    }

    // ------------------------------------------------------------------ helpers

    function _batch(uint64 num) internal pure returns (bytes memory b) {
        b = abi.encodePacked(bytes20(keccak256(abi.encode("batch", num))));
    }

    function _root(uint64 num) internal pure returns (bytes32) {
        return bytes32(uint256(keccak256(abi.encode("root", num))) % R);
    }

    function _roots(uint64 init, uint64 fin) internal pure returns (bytes32[] memory roots, bytes32 newRoot) {
        roots = new bytes32[](fin - init);
        for (uint64 b = init; b < fin; ++b) {
            roots[b - init] = _root(b);
        }
        newRoot = _root(fin);
    }

    function _validProof(uint64 init, uint64 fin, address miner) internal view returns (bytes memory p) {
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        bytes32 prev = rollup.stateRootAt(init - 1);
        uint256 n = fin - init + 1;
        for (uint256 i; i < n; ++i) {
            bytes32 next = i + 1 < n ? roots[i] : newRoot;
            p = bytes.concat(p, stub.proofFor(rollup.publicInputs(init + uint64(i), prev, next, miner)));
            prev = next;
        }
    }

    function _target() internal view returns (bool ok, uint64 init, uint64 fin) {
        init = rollup.lastVerifiedBatch() + 1;
        (fin,,,,,) = rollup.sequence(init);
        ok = fin != 0;
    }

    function _touch(uint64 init) internal {
        if (!touched[init]) {
            touched[init] = true;
            touchedInits.push(init);
        }
    }

    function _after() internal {
        ++calls;
        uint64 lv = rollup.lastVerifiedBatch();
        if (lv < maxVerified) verifiedDecreased = true;
        if (lv > maxVerified) maxVerified = lv;
    }

    function _window(uint64 init) internal view returns (uint256 revealStart, uint256 revealEnd) {
        (, uint64 open,, uint32 t1, uint32 t2,) = rollup.sequence(init);
        revealStart = uint256(open) + t1;
        revealEnd = revealStart + t2;
    }

    function _revealHonest(Pending memory p) internal {
        (uint64 fin,,,,,) = rollup.sequence(p.init);
        (bytes32[] memory roots, bytes32 newRoot) = _roots(p.init, fin);
        vm.prank(p.miner);
        try rollup.verifyBatches(p.init, fin, newRoot, roots, p.proof) returns (bool ok) {
            if (!ok) honestRevealRejected = true;
            ++honestReveals;
        } catch {
            honestRevealRejected = true;
        }
        ghostValid[p.init][p.miner] = true;
        _countReward(p.init);
    }

    function _countReward(uint64 init) internal {
        if (!counted[init]) {
            counted[init] = true;
            (,, uint128 reward,) = rollup.verification(init);
            rewardsAvailableTotal += reward;
        }
    }

    /// Honest miners reveal every pending commit in its reveal phase before the chain moves past it.
    function _revealHonestBefore(uint256 targetBlock) internal {
        uint256 k;
        while (k < pendingHonest.length) {
            Pending memory p = pendingHonest[k];
            (uint256 start, uint256 end) = _window(p.init);
            if (targetBlock >= end || block.number >= start) {
                if (block.number < start) vm.roll(start);
                _revealHonest(p);
                pendingHonest[k] = pendingHonest[pendingHonest.length - 1];
                pendingHonest.pop();
            } else {
                ++k;
            }
        }
    }

    // ------------------------------------------------------------------ actions

    function post(uint8 nRaw) external {
        uint256 n = bound(nRaw, 1, 3);
        uint64 first = rollup.lastBatch() + 1;
        bytes[] memory b = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            b[i] = _batch(first + uint64(i));
        }
        vm.prank(sequencer);
        rollup.sequenceBatches(b);
        _after();
    }

    /// An honest miner commits to a valid proof, only when it can reveal it in time.
    function commitHonest(uint8 whoRaw) external {
        _commit(whoRaw % 2, 0);
    }

    /// The cheater or the lazy miner commits to a valid proof, a copied one or garbage.
    function commitOther(uint8 whoRaw, uint8 kind) external {
        _commit(2 + whoRaw % 2, kind);
    }

    function _commit(uint256 who, uint8 kind) internal {
        (bool ok, uint64 init, uint64 fin) = _target();
        if (!ok) return _after();
        address m = miners[who];
        bytes memory proof;
        if (who < 2) {
            // honest: only in the commit phase (or when a new window can be opened)
            (ZkPowRollup.WindowPhase phase, uint32 wid,,,) = rollup.windowStatus(init);
            if (phase == ZkPowRollup.WindowPhase.Reveal) return _after();
            if (phase == ZkPowRollup.WindowPhase.Commit && rollup.commitOf(init, m).windowId == wid) return _after();
            proof = _validProof(init, fin, m);
        } else if (kind % 3 == 0) {
            proof = _validProof(init, fin, m); // cheater/lazy sometimes has a valid proof
        } else if (kind % 3 == 1) {
            proof = _validProof(init, fin, miners[0]); // copied, bound to another miner
        } else {
            proof = abi.encodePacked(kind, init);
        }
        vm.prank(m);
        try rollup.submitProofHash(init, fin, keccak256(abi.encodePacked(keccak256(proof), m))) {
            _touch(init);
            ++commitsOk;
            committedProof[init][m] = proof;
            if (who < 2) pendingHonest.push(Pending(init, m, proof));
        } catch {}
        _after();
    }

    /// Non-honest reveal, of a recent sequence: mostly the committed proof (which may be valid, a
    /// copy bound to another miner, or garbage), sometimes something else.
    function reveal(uint8 whoRaw, uint8 kind) external {
        address m = miners[2 + whoRaw % 2];
        if (m == miners[3] && kind % 4 != 0) return _after(); // the lazy miner rarely reveals
        uint256 t = touchedInits.length;
        if (t == 0) return _after();
        uint64 init = touchedInits[kind % 5 == 0 && t > 1 ? t - 2 : t - 1];
        (uint64 fin,,,,,) = rollup.sequence(init);
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        bytes memory proof = kind % 7 == 0 ? abi.encodePacked(kind) : committedProof[init][m];
        (uint256 start, uint256 end) = _window(init);
        bool inTime = block.number >= start && block.number < end;
        vm.prank(m);
        try rollup.verifyBatches(init, fin, newRoot, roots, proof) returns (bool valid) {
            if (valid) {
                if (!inTime) rewardWithoutValidProof = true; // accepted outside the reveal phase
                ghostValid[init][m] = true;
                _countReward(init);
                ++otherValidReveals;
            } else {
                ++otherInvalidReveals;
            }
        } catch {}
        _after();
    }

    function advance(uint16 blocksRaw) external {
        uint256 target = block.number + bound(blocksRaw, 1, 8);
        _revealHonestBefore(target);
        if (target > block.number) vm.roll(target);
        ++advances;
        _after();
    }

    function claim(uint8 whoRaw, uint8 initIdx) external {
        if (touchedInits.length == 0) return _after();
        address m = miners[whoRaw % 4];
        uint64 init = touchedInits[initIdx % touchedInits.length];
        vm.prank(m);
        try rollup.claimReward(init) returns (uint256 amount) {
            if (!ghostValid[init][m]) rewardWithoutValidProof = true;
            rewardsClaimedTotal += amount;
            ++claimsPaid;
        } catch {}
        _after();
    }

    function punishNoProof(uint8 whoRaw, uint8 initIdx) external {
        if (touchedInits.length == 0) return _after();
        uint64 init = touchedInits[initIdx % touchedInits.length];
        try rollup.punishNoProof(init, miners[whoRaw % 4]) {
            ++noProofPenalties;
        } catch {}
        _after();
    }

    function resetWindow() external {
        (bool ok, uint64 init,) = _target();
        if (ok) {
            try rollup.resetWindow(init) {
                ++resets;
            } catch {}
        }
        _after();
    }

    /// Cheater and lazy miner move money (honest miners keep their deposit untouched).
    function money(uint8 whoRaw, uint8 action, uint96 amountRaw) external {
        address m = miners[2 + whoRaw % 2];
        uint256 amount = bound(amountRaw, 1, 3 ether);
        vm.startPrank(m);
        if (action % 3 == 0) {
            vm.deal(m, m.balance + amount);
            dep.deposit{value: amount}();
        } else if (action % 3 == 1) {
            try dep.requestWithdrawal(amount) {} catch {}
        } else {
            try dep.withdraw() {} catch {}
        }
        vm.stopPrank();
        _after();
    }

    function touchedCount() external view returns (uint256) {
        return touchedInits.length;
    }
}

abstract contract InvariantSetup is Test {
    MinerDeposit internal dep;
    StubVerifierForRuleTests internal stub;
    ZkPowRollup internal rollup;
    RollupHandler internal handler;
    address[4] internal miners = [address(0x1001), address(0x1002), address(0x1003), address(0x1004)];
    uint256 internal constant HONEST_DEPOSIT = 5 ether;

    function setUp() public {
        vm.roll(100);
        dep = new MinerDeposit(address(this), 30);
        stub = new StubVerifierForRuleTests();
        rollup = new ZkPowRollup(
            IMinerDeposit(address(dep)),
            IGroth16BatchVerifier(address(stub)),
            address(0x5E0),
            bytes32(uint256(1)),
            20,
            4, // short windows, so that runs see many of them
            6,
            1 ether,
            0.1 ether,
            0.4 ether,
            0.3 ether
        );
        dep.registerRollup(address(rollup));
        vm.deal(address(this), 100 ether);
        dep.fundRewards{value: 1 ether}();
        for (uint256 i; i < 4; ++i) {
            vm.deal(miners[i], 100 ether);
            vm.prank(miners[i]);
            dep.deposit{value: i < 2 ? HONEST_DEPOSIT : 2 ether}();
        }
        handler = new RollupHandler(rollup, dep, stub, address(0x5E0), miners);
    }

    function afterInvariant() public view {
        log("calls", handler.calls());
        log("verified batches", rollup.lastVerifiedBatch());
        log("honest reveals", handler.honestReveals());
        log("other valid reveals", handler.otherValidReveals());
        log("other invalid reveals", handler.otherInvalidReveals());
        log("claims paid", handler.claimsPaid());
        log("no-proof penalties", handler.noProofPenalties());
        log("explicit resets", handler.resets());
        log("commits", handler.commitsOk());
        log("advances", handler.advances());
        log("posted", rollup.lastBatch());
    }
}

contract ZkPowRollupInvariantTest is InvariantSetup {
    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function invariant_verifiedBatchNeverDecreases() public view {
        assertFalse(handler.verifiedDecreased(), "lastVerifiedBatch decreased");
        assertEq(rollup.lastVerifiedBatch(), handler.maxVerified(), "max");
        assertLe(rollup.lastVerifiedBatch(), rollup.lastBatch(), "verified <= posted");
        assertEq(rollup.stateRoot(), rollup.stateRootAt(rollup.lastVerifiedBatch()), "state root");
    }

    function invariant_noRewardWithoutValidProof() public view {
        assertFalse(handler.rewardWithoutValidProof(), "reward without a valid in-time proof");
        uint256 n = handler.touchedCount();
        for (uint256 k; k < n; ++k) {
            uint64 init = handler.touchedInits(k);
            for (uint256 i; i < 4; ++i) {
                ZkPowRollup.CommitInfo memory c = rollup.commitOf(init, miners[i]);
                if (c.rewarded) assertTrue(c.valid, "rewarded => valid");
                if (c.valid) assertTrue(handler.ghostValid(init, miners[i]), "valid => revealed valid by the handler");
            }
        }
        assertLe(handler.rewardsClaimedTotal(), handler.rewardsAvailableTotal(), "rewards <= sum of sequence rewards");
    }

    function invariant_accountingAddsUp() public view {
        assertEq(
            address(dep).balance, dep.totalStaked() + dep.rewardPool() + dep.totalClaimable(), "balance"
        );
        assertEq(dep.totalDeposited(), dep.totalStaked() + dep.totalWithdrawn() + dep.totalSlashed(), "deposits");
        assertEq(
            dep.totalFunded() + dep.totalSlashed(),
            dep.rewardPool() + dep.totalClaimable() + dep.totalRewardsPaid(),
            "rewards"
        );
        uint256 staked;
        for (uint256 i; i < 4; ++i) {
            (uint256 pending,) = dep.pendingWithdrawalOf(miners[i]);
            staked += dep.depositOf(miners[i]) + pending;
        }
        assertEq(staked, dep.totalStaked(), "sum of accounts");
    }

    function invariant_honestMinerNeverPunished() public view {
        assertFalse(handler.honestRevealRejected(), "honest reveal rejected");
        for (uint256 i; i < 2; ++i) {
            assertEq(dep.depositOf(miners[i]), HONEST_DEPOSIT, "honest deposit intact");
            assertEq(dep.debtOf(miners[i]), 0, "honest debt");
            uint256 n = handler.touchedCount();
            for (uint256 k; k < n; ++k) {
                assertFalse(rollup.commitOf(handler.touchedInits(k), miners[i]).punished, "honest punished");
            }
        }
    }
}

/// The handler itself does what it should (a deterministic walk through its actions).
contract RollupHandlerSmokeTest is InvariantSetup {
    function test_handlerSmoke() public {
        handler.post(2);
        handler.commitHonest(0);
        handler.commitHonest(1);
        handler.commitOther(0, 1);
        handler.commitOther(1, 2);
        handler.advance(8);
        handler.advance(8);
        handler.claim(0, 0);
        handler.punishNoProof(3, 0);
        handler.post(1);
        handler.commitOther(0, 3); // cheater, valid proof
        handler.advance(5);
        handler.reveal(0, 1);
        assertEq(handler.honestReveals(), 2, "honest reveals");
        assertEq(handler.claimsPaid(), 1, "claim");
        assertEq(handler.noProofPenalties(), 1, "no-proof penalty");
        assertEq(handler.otherValidReveals(), 1, "cheater's valid proof accepted");
        assertEq(rollup.lastVerifiedBatch(), 3, "verified");
    }
}
