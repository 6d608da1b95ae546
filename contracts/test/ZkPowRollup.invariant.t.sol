// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test, Vm} from "./utils/Test.sol";
import {StubVerifierForRuleTests} from "./utils/StubVerifierForRuleTests.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {IMinerDeposit} from "../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../src/interfaces/IGroth16BatchVerifier.sol";

/// Drives two rollups that share one MinerDeposit with random actions of two honest miners (commit
/// a valid proof to any posted sequence, pipelined, and reveal it as soon as its reveal phase
/// runs), a cheating miner (wrong hashes, proofs bound to another miner, sometimes a valid proof)
/// and a lazy miner (commits, rarely reveals), plus the sequencer, block advances, claims,
/// third-party settlements, window resets, reward funding and deposits/withdrawals.
///
/// Every event of the rollups is read back (vm.recordLogs) and checked against ghost state kept
/// here from the rule text alone: the open block of every window, the block in which every
/// sequence was verified, the window of every commit. A penalty is legitimate only if the reveal
/// phase S = max(O + T1, predecessor verified) of the punished commit's window ran: a wrong proof
/// during [S, S + T2), no proof at or after S + T2.
contract RollupHandler is Test {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    bytes32 internal constant GENESIS = bytes32(uint256(1));

    struct Params {
        uint32 t1;
        uint32 t2;
        uint128 wrong;
        uint128 noProof;
    }

    struct Pending {
        uint8 r;
        uint64 init;
        address miner;
        bytes proof;
    }

    ZkPowRollup[2] public rollups;
    Params[2] internal params;
    MinerDeposit public dep;
    StubVerifierForRuleTests public stub;
    address public sequencer;
    address[4] public miners; // 0, 1 honest; 2 cheater; 3 lazy
    address public settler; // a third party that only settles
    uint256 public deployBlock;

    Pending[] internal pendingHonest; // honest commits not revealed yet
    Pending[] internal otherCommits; // commits of the cheater and the lazy miner (proof unused)
    Pending[] internal cheaterPending; // the cheater's commits it has not revealed yet
    Pending[] internal validReveals; // (rollup, sequence, miner) of every valid reveal (proof unused)
    Pending[] internal commitKeys; // every (rollup, sequence, miner) with a commit, once (proof unused)
    mapping(uint256 => mapping(uint64 => mapping(address => bool))) internal committedEver;
    mapping(uint256 => mapping(uint64 => mapping(address => bytes))) internal committedProof;
    mapping(uint256 => uint64[]) internal starts; // posted sequences per rollup
    mapping(uint256 => mapping(uint64 => uint64)) internal finOf;

    // ghost state from the events
    mapping(uint256 => mapping(uint64 => mapping(uint32 => uint64))) internal ghostOpen; // window -> O
    mapping(uint256 => mapping(uint64 => uint64)) internal ghostVerifiedAt; // final batch -> block
    mapping(uint256 => mapping(uint64 => mapping(address => uint32))) internal ghostCommitWindow;
    mapping(uint256 => mapping(uint64 => mapping(address => uint32))) internal ghostValidWindow;
    mapping(uint256 => mapping(uint64 => mapping(address => bool))) public ghostValid;
    uint64[2] public maxVerified;
    uint256[2] public rewardsClaimed;
    uint256[2] public rewardsReserved; // sum of the rewards reserved for posted sequences

    // violations
    bool public verifiedDecreased;
    bool public rewardWithoutValidProof;
    bool public honestRevealRejected;
    bool public honestMissedRevealPhase;
    bool public punishedBeforeRevealPhase;
    bool public wrongPenaltyAmount;
    bool public validRevealerPunished;
    bool public honestPunished;
    bool public revealOutOfPhase; // a reveal accepted outside its reveal phase

    // coverage counters
    uint256 public calls;
    uint256 public posts;
    uint256 public commitsOk;
    uint256 public pipelinedCommits; // commits while the predecessor was unverified
    uint256 public honestCommits;
    uint256 public honestReveals;
    uint256 public otherValidReveals;
    uint256 public otherInvalidReveals;
    uint256 public awaitingRevealsRejected;
    uint256 public claimsPaid;
    uint256 public settlements;
    uint256 public thirdPartySettlements;
    uint256 public staleSettlements;
    uint256 public resets;
    uint256 public punishmentsChecked;
    uint256 public lateRevealPhases; // reveal phases that started after O + T1 (late predecessor)

    constructor(
        ZkPowRollup[2] memory rollups_,
        MinerDeposit dep_,
        StubVerifierForRuleTests stub_,
        address sequencer_,
        address[4] memory miners_,
        address settler_,
        uint256 deployBlock_
    ) {
        rollups = rollups_;
        dep = dep_;
        stub = stub_;
        sequencer = sequencer_;
        miners = miners_;
        settler = settler_;
        deployBlock = deployBlock_;
        for (uint256 r; r < 2; ++r) {
            (uint32 t1, uint32 t2) = (rollups_[r].t1(), rollups_[r].t2());
            params[r] = Params(t1, t2, uint128(rollups_[r].penaltyWrongProof()), uint128(rollups_[r].penaltyNoProof()));
        }
    }

    // ------------------------------------------------------------------ helpers

    function _batch(uint256 r, uint64 num) internal pure returns (bytes memory) {
        return abi.encodePacked(bytes20(keccak256(abi.encode("batch", r, num))));
    }

    function _root(uint64 num) internal pure returns (bytes32) {
        if (num == 0) return GENESIS;
        return bytes32(uint256(keccak256(abi.encode("root", num))) % R);
    }

    function _roots(uint64 init, uint64 fin) internal pure returns (bytes32[] memory roots, bytes32 newRoot) {
        roots = new bytes32[](fin - init);
        for (uint64 b = init; b < fin; ++b) {
            roots[b - init] = _root(b);
        }
        newRoot = _root(fin);
    }

    /// A valid proof of [init, fin] for `miner`, from the deterministic root after init - 1 (known
    /// before the predecessor is verified, as a pipelined miner knows it).
    function _validProof(uint256 r, uint64 init, uint64 fin, address miner) internal view returns (bytes memory p) {
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        bytes32 prev = _root(init - 1);
        uint256 n = fin - init + 1;
        for (uint256 i; i < n; ++i) {
            bytes32 next = i + 1 < n ? roots[i] : newRoot;
            p = bytes.concat(p, stub.proofFor(rollups[r].publicInputs(init + uint64(i), prev, next, miner)));
            prev = next;
        }
    }

    /// A posted sequence: half of the time the first unverified one, else any unverified one
    /// (`unverifiedOnly`) or any posted one.
    function _pick(uint256 r, uint256 sel, bool unverifiedOnly) internal view returns (bool ok, uint64 init, uint64 fin) {
        uint256 n = starts[r].length;
        if (n == 0) return (false, 0, 0);
        uint64 next = rollups[r].lastVerifiedBatch() + 1;
        if (sel % 2 == 0 && finOf[r][next] != 0) return (true, next, finOf[r][next]);
        uint256 first;
        if (unverifiedOnly) {
            while (first < n && starts[r][first] < next) ++first;
            if (first == n) return (false, 0, 0);
        }
        init = starts[r][first + (sel / 2) % (n - first)];
        fin = finOf[r][init];
        ok = true;
    }

    function _phase(uint256 r, uint64 init) internal view returns (ZkPowRollup.WindowPhase phase) {
        (phase,,,,,) = rollups[r].windowStatus(init);
    }

    /// Honest miners reveal every pending commit whose reveal phase runs now; a verification can
    /// open the next sequence's reveal phase in the same block, hence the loop.
    function _revealHonestDue() internal {
        bool progress = true;
        while (progress) {
            progress = false;
            uint256 k;
            while (k < pendingHonest.length) {
                Pending memory p = pendingHonest[k];
                ZkPowRollup.WindowPhase phase = _phase(p.r, p.init);
                if (phase == ZkPowRollup.WindowPhase.Reveal || phase == ZkPowRollup.WindowPhase.Ended) {
                    if (phase == ZkPowRollup.WindowPhase.Ended) honestMissedRevealPhase = true;
                    else _revealHonest(p);
                    pendingHonest[k] = pendingHonest[pendingHonest.length - 1];
                    pendingHonest.pop();
                    progress = true;
                } else {
                    ++k;
                }
            }
        }
    }

    /// The cheater reveals what it committed at some block of the reveal phase (its last block at
    /// the latest); a commit whose window ended or was replaced is dropped.
    function _revealCheaterDue() internal {
        uint256 k;
        while (k < cheaterPending.length) {
            Pending memory p = cheaterPending[k];
            (ZkPowRollup.WindowPhase phase, uint32 wid,,,, uint64 end) = rollups[p.r].windowStatus(p.init);
            ZkPowRollup.CommitInfo memory c = rollups[p.r].commitOf(p.init, p.miner);
            bool gone = c.revealed || c.settled || c.windowId != wid || phase == ZkPowRollup.WindowPhase.Ended;
            bool now_ = phase == ZkPowRollup.WindowPhase.Reveal && ((block.number + p.init) % 3 == 0 || block.number + 1 == end);
            if (!gone && now_) _revealOther(p.miner, p.r, p.init, 1);
            if (gone || now_) {
                cheaterPending[k] = cheaterPending[cheaterPending.length - 1];
                cheaterPending.pop();
            } else {
                ++k;
            }
        }
    }

    function _revealHonest(Pending memory p) internal {
        uint64 fin = finOf[p.r][p.init];
        (bytes32[] memory roots, bytes32 newRoot) = _roots(p.init, fin);
        vm.prank(p.miner);
        try rollups[p.r].verifyBatches(p.init, fin, newRoot, roots, p.proof) returns (bool ok) {
            if (!ok) honestRevealRejected = true;
            ++honestReveals;
        } catch {
            honestRevealRejected = true;
        }
        _recordValid(p.r, p.init, p.miner);
    }

    function _recordValid(uint256 r, uint64 init, address m) internal {
        ghostValid[r][init][m] = true;
        ghostValidWindow[r][init][m] = ghostCommitWindow[r][init][m];
        validReveals.push(Pending(uint8(r), init, m, ""));
    }

    // ------------------------------------------------------------------ event checks

    function _scan() internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            uint256 r;
            if (logs[i].emitter == address(rollups[0])) r = 0;
            else if (logs[i].emitter == address(rollups[1])) r = 1;
            else continue;
            bytes32 t0 = logs[i].topics[0];
            uint64 init = logs[i].topics.length > 1 ? uint64(uint256(logs[i].topics[1])) : 0;
            if (t0 == ZkPowRollup.WindowOpened.selector) {
                (uint32 windowId, uint64 openBlock,) = abi.decode(logs[i].data, (uint32, uint64, uint64));
                ghostOpen[r][init][windowId] = openBlock;
            } else if (t0 == ZkPowRollup.SequenceVerified.selector) {
                (uint64 fin,) = abi.decode(logs[i].data, (uint64, bytes32));
                ghostVerifiedAt[r][fin] = uint64(block.number);
                // the successor's reveal phase starts now if its commit phase is already over
                (,,, uint64 ce, uint64 rs,) = _windowOf(r, fin + 1);
                if (ce != 0 && rs > ce) ++lateRevealPhases;
            } else if (t0 == ZkPowRollup.ProofHashSubmitted.selector) {
                address m = address(uint160(uint256(logs[i].topics[2])));
                (,, uint32 windowId) = abi.decode(logs[i].data, (uint64, bytes32, uint32));
                ghostCommitWindow[r][init][m] = windowId;
            } else if (t0 == ZkPowRollup.Punished.selector) {
                _checkPunished(r, init, logs[i]);
            }
        }
    }

    function _windowOf(uint256 r, uint64 init)
        internal
        view
        returns (ZkPowRollup.WindowPhase, uint32, uint64, uint64, uint64, uint64)
    {
        return rollups[r].windowStatus(init);
    }

    function _checkPunished(uint256 r, uint64 init, Vm.Log memory log_) internal {
        ++punishmentsChecked;
        address m = address(uint160(uint256(log_.topics[2])));
        (ZkPowRollup.PunishReason reason, uint256 amount, address by, uint256 share) =
            abi.decode(log_.data, (ZkPowRollup.PunishReason, uint256, address, uint256));
        if (m == miners[0] || m == miners[1]) honestPunished = true;
        uint32 w = ghostCommitWindow[r][init][m];
        if (ghostValid[r][init][m] && ghostValidWindow[r][init][m] == w) validRevealerPunished = true;
        // the reveal phase of window w, from the ghost state only
        uint256 pred = init == 1 ? deployBlock : ghostVerifiedAt[r][init - 1];
        uint256 o = ghostOpen[r][init][w];
        uint256 s = o + params[r].t1;
        if (pred > s) s = pred;
        uint256 end = s + params[r].t2;
        if (pred == 0 || o == 0) {
            punishedBeforeRevealPhase = true;
        } else if (reason == ZkPowRollup.PunishReason.NoProof) {
            if (block.number < end) punishedBeforeRevealPhase = true;
        } else if (block.number < s || block.number >= end) {
            punishedBeforeRevealPhase = true;
        }
        uint256 expected = reason == ZkPowRollup.PunishReason.NoProof ? params[r].noProof : params[r].wrong;
        uint256 expectedShare = by != address(0) && by != m ? expected / 10 : 0;
        if (amount != expected || share != expectedShare) wrongPenaltyAmount = true;
    }

    /// Called at the start of every action: records the events, and every other call one block
    /// passes (so that runs see many windows end).
    function _begin() internal {
        vm.recordLogs();
        // the sequencer keeps a few batches ahead of the provers on both rollups
        for (uint256 r; r < 2; ++r) {
            if (rollups[r].lastBatch() < rollups[r].lastVerifiedBatch() + 3) _post(r, 1 + calls % 2);
        }
        if (calls % 2 == 1) {
            vm.roll(block.number + 1);
            _revealHonestDue();
            _revealCheaterDue();
            _scan();
        }
    }

    /// Called at the end of every action.
    function _done() internal {
        _revealHonestDue();
        _revealCheaterDue();
        _scan();
        ++calls;
        for (uint256 r; r < 2; ++r) {
            uint64 lv = rollups[r].lastVerifiedBatch();
            if (lv < maxVerified[r]) verifiedDecreased = true;
            if (lv > maxVerified[r]) maxVerified[r] = lv;
        }
    }

    // ------------------------------------------------------------------ actions

    function post(uint8 rSel, uint8 nRaw) external {
        _begin();
        _post(rSel % 2, bound(nRaw, 1, 3));
        _done();
    }

    function _post(uint256 r, uint256 n) internal {
        ZkPowRollup ro = rollups[r];
        uint64 first = ro.lastBatch() + 1;
        bytes[] memory b = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            b[i] = _batch(r, first + uint64(i));
        }
        vm.prank(sequencer);
        (uint64 init, uint64 fin) = ro.sequenceBatches(b);
        starts[r].push(init);
        finOf[r][init] = fin;
        (,, uint128 reward,) = ro.verification(init);
        rewardsReserved[r] += reward;
        ++posts;
    }

    /// An honest miner (or both) commits a valid proof to a posted, unverified sequence whose
    /// window takes commits, and will reveal it as soon as the reveal phase runs.
    function commitHonest(uint8 whoRaw, uint8 rSel, uint8 seqSel) external {
        _begin();
        uint256 r = rSel % 2;
        (bool ok, uint64 init, uint64 fin) = _pick(r, seqSel, true);
        if (ok) {
            if (whoRaw % 3 != 1) _commitHonest(r, init, fin, miners[0]);
            if (whoRaw % 3 != 0) _commitHonest(r, init, fin, miners[1]);
        }
        _done();
    }

    function _commitHonest(uint256 r, uint64 init, uint64 fin, address m) internal {
        (ZkPowRollup.WindowPhase phase, uint32 wid,,,,) = rollups[r].windowStatus(init);
        bool takes = phase == ZkPowRollup.WindowPhase.NotOpen || phase == ZkPowRollup.WindowPhase.Ended
            || (phase == ZkPowRollup.WindowPhase.Commit && rollups[r].commitOf(init, m).windowId != wid);
        (,,,,, bool verified) = rollups[r].sequence(init);
        if (!takes || verified) return;
        bytes memory proof = _validProof(r, init, fin, m);
        if (_tryCommit(r, init, fin, m, proof)) {
            pendingHonest.push(Pending(uint8(r), init, m, proof));
            ++honestCommits;
        }
    }

    /// The cheater or the lazy miner commits a valid proof, a copied one or garbage.
    function commitOther(uint8 whoRaw, uint8 rSel, uint8 seqSel, uint8 kind) external {
        _begin();
        uint256 r = rSel % 2;
        (bool ok, uint64 init, uint64 fin) = _pick(r, seqSel, true);
        if (ok) {
            address m = miners[2 + whoRaw % 2];
            bytes memory proof;
            if (kind % 3 == 0) proof = _validProof(r, init, fin, m);
            else if (kind % 3 == 1) proof = _validProof(r, init, fin, miners[0]); // bound to another miner
            else proof = abi.encodePacked(kind, init);
            _tryCommit(r, init, fin, m, proof);
        }
        _done();
    }

    function _tryCommit(uint256 r, uint64 init, uint64 fin, address m, bytes memory proof) internal returns (bool) {
        bool pipelined = rollups[r].lastVerifiedBatch() + 1 < init;
        vm.prank(m);
        try rollups[r].submitProofHash(init, fin, keccak256(abi.encodePacked(keccak256(proof), m))) {
            ++commitsOk;
            if (pipelined) ++pipelinedCommits;
            committedProof[r][init][m] = proof;
            if (!committedEver[r][init][m]) {
                committedEver[r][init][m] = true;
                commitKeys.push(Pending(uint8(r), init, m, ""));
            }
            if (m == miners[2] || m == miners[3]) otherCommits.push(Pending(uint8(r), init, m, ""));
            if (m == miners[2]) cheaterPending.push(Pending(uint8(r), init, m, proof));
            return true;
        } catch {
            return false;
        }
    }

    /// Non-honest reveal: mostly one of the miner's commits whose reveal phase runs now, else any
    /// sequence at any time; mostly the committed proof (which may be valid, bound to another
    /// miner, or garbage), sometimes something else. The lazy miner rarely reveals.
    function reveal(uint8 whoRaw, uint8 rSel, uint8 seqSel, uint8 kind) external {
        _begin();
        address m = miners[2 + whoRaw % 2];
        if (!(m == miners[3] && kind % 4 != 0)) {
            (bool ok, uint256 r, uint64 init) = _revealTarget(m, rSel, seqSel);
            if (ok) _revealOther(m, r, init, kind);
        }
        _done();
    }

    function _revealTarget(address m, uint8 rSel, uint8 seqSel) internal view returns (bool ok, uint256 r, uint64 init) {
        if (seqSel % 4 != 0) {
            for (uint256 k = otherCommits.length; k > 0; --k) {
                Pending memory c = otherCommits[k - 1];
                if (c.miner == m && _phase(c.r, c.init) == ZkPowRollup.WindowPhase.Reveal) return (true, c.r, c.init);
            }
        }
        r = rSel % 2;
        (ok, init,) = _pick(r, seqSel, false);
    }

    function _revealOther(address m, uint256 r, uint64 init, uint8 kind) internal {
        uint64 fin = finOf[r][init];
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        bytes memory proof = kind % 7 == 0 ? abi.encodePacked(kind) : committedProof[r][init][m];
        ZkPowRollup.WindowPhase phase = _phase(r, init);
        vm.prank(m);
        try rollups[r].verifyBatches(init, fin, newRoot, roots, proof) returns (bool valid) {
            if (phase != ZkPowRollup.WindowPhase.Reveal) revealOutOfPhase = true;
            if (valid) {
                _recordValid(r, init, m);
                ++otherValidReveals;
            } else {
                ++otherInvalidReveals;
            }
        } catch {
            if (phase == ZkPowRollup.WindowPhase.AwaitingPredecessor) ++awaitingRevealsRejected;
        }
    }

    /// Moves 1..8 blocks, one at a time: honest miners reveal in every block where they can.
    function advance(uint8 blocksRaw) external {
        _begin();
        uint256 n = bound(blocksRaw, 1, 8);
        for (uint256 i; i < n; ++i) {
            vm.roll(block.number + 1);
            _revealHonestDue();
            _revealCheaterDue();
            _scan();
        }
        _done();
    }

    /// Mostly the claim of a valid revealer (too early, once, or twice), else anyone's claim on any
    /// sequence.
    function claim(uint8 whoRaw, uint8 rSel, uint8 seqSel) external {
        _begin();
        uint256 n = validReveals.length;
        bool ok;
        uint256 r;
        uint64 init;
        address m;
        if (n != 0 && seqSel % 4 != 0) {
            Pending memory v = validReveals[(uint256(seqSel) * 7 + whoRaw) % n];
            (ok, r, init, m) = (true, v.r, v.init, v.miner);
        } else {
            r = rSel % 2;
            (ok, init,) = _pick(r, seqSel, false);
            m = miners[whoRaw % 4];
        }
        if (ok) {
            vm.prank(m);
            try rollups[r].claimReward(init) returns (uint256 amount) {
                if (!ghostValid[r][init][m]) rewardWithoutValidProof = true;
                rewardsClaimed[r] += amount;
                ++claimsPaid;
            } catch {}
        }
        _done();
    }

    /// Anyone settles a commit without a valid proof: the third party, a miner, or the miner itself.
    function settle(uint8 byRaw, uint8 whoRaw, uint8 rSel, uint8 seqSel) external {
        _begin();
        uint256 r = rSel % 2;
        (bool ok, uint64 init,) = _pick(r, seqSel, false);
        if (ok) {
            address m = miners[whoRaw % 4];
            address by = byRaw % 3 == 0 ? settler : miners[byRaw % 4];
            bool stale = rollups[r].commitOf(init, m).windowId < _windowId(r, init);
            vm.prank(by);
            try rollups[r].settleNoProof(init, m) {
                ++settlements;
                if (by != m) ++thirdPartySettlements;
                if (stale) ++staleSettlements;
            } catch {}
        }
        _done();
    }

    function _windowId(uint256 r, uint64 init) internal view returns (uint32 wid) {
        (, wid,,,,) = rollups[r].windowStatus(init);
    }

    function resetWindow(uint8 rSel, uint8 seqSel) external {
        _begin();
        uint256 r = rSel % 2;
        (bool ok, uint64 init,) = _pick(r, seqSel, true);
        if (ok) {
            try rollups[r].resetWindow(init) {
                ++resets;
            } catch {}
        }
        _done();
    }

    /// Anyone funds a rollup's reward budget.
    function fund(uint8 rSel, uint64 amountRaw) external {
        _begin();
        uint256 amount = bound(amountRaw, 1, 0.5 ether);
        vm.deal(address(this), address(this).balance + amount);
        dep.fundRewards{value: amount}(address(rollups[rSel % 2]));
        _done();
    }

    /// Cheater and lazy miner move their deposits (honest miners keep theirs untouched); anyone
    /// may cash credited rewards.
    function money(uint8 whoRaw, uint8 action, uint96 amountRaw) external {
        _begin();
        address m = miners[2 + whoRaw % 2];
        uint256 amount = bound(amountRaw, 1, 3 ether);
        vm.startPrank(m);
        if (action % 4 == 0) {
            vm.deal(m, m.balance + amount);
            dep.deposit{value: amount}();
        } else if (action % 4 == 1) {
            try dep.requestWithdrawal(amount) {} catch {}
        } else if (action % 4 == 2) {
            try dep.withdraw() {} catch {}
        }
        vm.stopPrank();
        if (action % 4 == 3) {
            address who = whoRaw % 5 == 4 ? settler : miners[whoRaw % 4];
            vm.prank(who);
            try dep.claimRewards() {} catch {}
        }
        _done();
    }

    // ------------------------------------------------------------------ views for the invariants

    function startsCount(uint256 r) external view returns (uint256) {
        return starts[r].length;
    }

    function startAt(uint256 r, uint256 i) external view returns (uint64) {
        return starts[r][i];
    }

    function commitKeyCount() external view returns (uint256) {
        return commitKeys.length;
    }

    function commitKeyAt(uint256 i) external view returns (uint256 r, uint64 init, address miner) {
        Pending storage k = commitKeys[i];
        return (k.r, k.init, k.miner);
    }

    /// The bond of every commit on rollup r: max of its two penalties (terms never change here).
    function bondOf(uint256 r) external view returns (uint256) {
        return params[r].wrong > params[r].noProof ? params[r].wrong : params[r].noProof;
    }

    function pendingHonestCount() external view returns (uint256) {
        return pendingHonest.length;
    }

    receive() external payable {}
}

abstract contract InvariantSetup is Test {
    MinerDeposit internal dep;
    StubVerifierForRuleTests internal stub;
    ZkPowRollup[2] internal rollups;
    RollupHandler internal handler;
    address[4] internal miners = [address(0x1001), address(0x1002), address(0x1003), address(0x1004)];
    address internal settler = address(0x5E771E);
    address internal sequencer = address(0x5E0);
    uint256 internal constant HONEST_DEPOSIT = 5 ether;

    function setUp() public {
        vm.roll(100);
        dep = new MinerDeposit(address(this), 30);
        stub = new StubVerifierForRuleTests();
        // short windows, so that runs see many of them; different terms on the two rollups
        rollups[0] = _rollup(4, 6, 1 ether, 0.1 ether, 0.4 ether, 0.3 ether);
        rollups[1] = _rollup(3, 5, 1.5 ether, 0.05 ether, 0.2 ether, 0.6 ether);
        vm.deal(address(this), 100 ether);
        dep.fundRewards{value: 1 ether}(address(rollups[0]));
        dep.fundRewards{value: 0.3 ether}(address(rollups[1])); // runs short: reserves what is there
        for (uint256 i; i < 4; ++i) {
            vm.deal(miners[i], 100 ether);
            vm.prank(miners[i]);
            dep.deposit{value: i < 2 ? HONEST_DEPOSIT : 2 ether}();
        }
        handler = new RollupHandler(rollups, dep, stub, sequencer, miners, settler, block.number);
    }

    function _rollup(uint32 t1, uint32 t2, uint128 minDep, uint128 reward, uint128 wrong, uint128 noProof)
        internal
        returns (ZkPowRollup r)
    {
        r = new ZkPowRollup(
            IMinerDeposit(address(dep)),
            IGroth16BatchVerifier(address(stub)),
            sequencer,
            bytes32(uint256(1)),
            20,
            t1,
            t2,
            minDep,
            reward,
            wrong,
            noProof
        );
        dep.registerRollup(address(r));
    }

    function afterInvariant() public view {
        log("calls", handler.calls());
        log("posts", handler.posts());
        log("verified batches, rollup 0", rollups[0].lastVerifiedBatch());
        log("verified batches, rollup 1", rollups[1].lastVerifiedBatch());
        log("commits", handler.commitsOk());
        log("pipelined commits", handler.pipelinedCommits());
        log("reveal phases started late (predecessor)", handler.lateRevealPhases());
        log("reveals rejected while awaiting the predecessor", handler.awaitingRevealsRejected());
        log("honest commits", handler.honestCommits());
        log("honest reveals", handler.honestReveals());
        log("honest commits pending", handler.pendingHonestCount());
        log("block", block.number);
        log("other valid reveals", handler.otherValidReveals());
        log("other invalid reveals", handler.otherInvalidReveals());
        log("claims paid", handler.claimsPaid());
        log("settlements", handler.settlements());
        log("third-party settlements", handler.thirdPartySettlements());
        log("stale-commit settlements", handler.staleSettlements());
        log("explicit resets", handler.resets());
        log("penalties checked", handler.punishmentsChecked());
    }
}

contract ZkPowRollupInvariantTest is InvariantSetup {
    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function invariant_verifiedBatchNeverDecreases() public view {
        assertFalse(handler.verifiedDecreased(), "lastVerifiedBatch decreased");
        for (uint256 r; r < 2; ++r) {
            ZkPowRollup ro = rollups[r];
            assertEq(ro.lastVerifiedBatch(), handler.maxVerified(r), "max");
            assertLe(ro.lastVerifiedBatch(), ro.lastBatch(), "verified <= posted");
            assertEq(ro.stateRoot(), ro.stateRootAt(ro.lastVerifiedBatch()), "state root");
        }
    }

    /// Nobody is punished for a window whose reveal phase did not run, and every penalty has the
    /// sequence's amount and settler share.
    function invariant_noPunishmentBeforeRevealPhaseRan() public view {
        assertFalse(handler.punishedBeforeRevealPhase(), "punished before the reveal phase ran");
        assertFalse(handler.wrongPenaltyAmount(), "penalty amount or settler share");
        assertFalse(handler.revealOutOfPhase(), "reveal accepted outside the reveal phase");
    }

    function invariant_noRewardWithoutValidProof() public view {
        assertFalse(handler.rewardWithoutValidProof(), "reward without a valid in-time proof");
        uint256 n = handler.commitKeyCount();
        for (uint256 k; k < n; ++k) {
            (uint256 r, uint64 init, address m) = handler.commitKeyAt(k);
            ZkPowRollup.CommitInfo memory c = rollups[r].commitOf(init, m);
            if (c.rewarded) assertTrue(c.valid, "rewarded => valid");
            if (c.valid) assertTrue(handler.ghostValid(r, init, m), "valid => revealed valid");
        }
        for (uint256 r; r < 2; ++r) {
            assertLe(handler.rewardsClaimed(r), handler.rewardsReserved(r), "rewards <= reserved for the rollup");
        }
    }

    /// For every miner: locked <= active deposit, and the locked amount is exactly the sum of the
    /// bonds of its unsettled commits on both rollups. Summed over the miners (the only committers),
    /// the locks are the bonds of all unsettled commits and stay within the staked total.
    function invariant_lockedWithinDeposit() public view {
        uint256[4] memory open;
        uint256 openTotal;
        uint256 n = handler.commitKeyCount();
        for (uint256 k; k < n; ++k) {
            (uint256 r, uint64 init, address m) = handler.commitKeyAt(k);
            ZkPowRollup.CommitInfo memory c = rollups[r].commitOf(init, m);
            if (!c.settled) {
                open[_index(m)] += handler.bondOf(r);
                openTotal += handler.bondOf(r);
            }
        }
        uint256 total;
        for (uint256 i; i < 4; ++i) {
            uint256 locked = dep.lockedOf(miners[i]);
            assertLe(locked, dep.depositOf(miners[i]), "locked <= deposit");
            assertEq(locked, open[i], "locked = bonds of unsettled commits on both rollups");
            total += locked;
        }
        assertEq(dep.lockedOf(settler), 0, "the settler never commits");
        assertEq(total, openTotal, "locks of all miners = bonds of all unsettled commits");
        assertLe(total, dep.totalStaked(), "locked <= staked");
    }

    function _index(address m) internal view returns (uint256 i) {
        while (miners[i] != m) ++i;
    }

    /// Funds are conserved, and the books of MinerDeposit add up to the sum of the accounts.
    function invariant_fundsConserved() public view {
        assertEq(
            dep.totalDeposited() + dep.totalFunded(),
            address(dep).balance + dep.totalWithdrawn() + dep.totalRewardsPaid(),
            "deposited + funded = balance + withdrawn + paid"
        );
        assertEq(
            address(dep).balance,
            dep.totalStaked() + dep.totalBudget() + dep.totalReserved() + dep.totalClaimable(),
            "balance"
        );
        assertEq(dep.totalDeposited(), dep.totalStaked() + dep.totalWithdrawn() + dep.totalSlashed(), "deposits");
        assertEq(
            dep.totalFunded() + dep.totalSlashed(),
            dep.totalBudget() + dep.totalReserved() + dep.totalClaimable() + dep.totalRewardsPaid(),
            "rewards"
        );
        uint256 staked;
        uint256 claimable = dep.rewardsOf(settler);
        for (uint256 i; i < 4; ++i) {
            (uint256 pending,) = dep.pendingWithdrawalOf(miners[i]);
            staked += dep.depositOf(miners[i]) + pending;
            claimable += dep.rewardsOf(miners[i]);
        }
        assertEq(staked, dep.totalStaked(), "sum of accounts");
        assertEq(claimable, dep.totalClaimable(), "sum of claimable");
        (uint256 f0, uint256 r0) = dep.budgetOf(address(rollups[0]));
        (uint256 f1, uint256 r1) = dep.budgetOf(address(rollups[1]));
        assertEq(f0 + f1, dep.totalBudget(), "sum of budgets");
        assertEq(r0 + r1, dep.totalReserved(), "sum of reserves");
    }

    /// A miner who commits and reveals a valid proof in time is never punished: the honest miners
    /// keep their whole deposit, and no valid revealer is ever penalised for that commit.
    function invariant_validRevealerNeverPunished() public view {
        assertFalse(handler.honestRevealRejected(), "honest reveal rejected");
        assertFalse(handler.honestMissedRevealPhase(), "honest miner could not reveal in time");
        assertFalse(handler.honestPunished(), "honest miner punished");
        assertFalse(handler.validRevealerPunished(), "valid revealer punished");
        for (uint256 i; i < 2; ++i) {
            assertEq(dep.depositOf(miners[i]), HONEST_DEPOSIT, "honest deposit intact");
        }
    }
}

/// The handler itself does what it should (a deterministic walk through its actions; the
/// sequencer also posts by itself whenever fewer than three batches await proof).
contract RollupHandlerSmokeTest is InvariantSetup {
    function test_handlerSmoke() public {
        handler.post(0, 2);
        handler.post(1, 1);
        assertGe(handler.startsCount(0), 2, "several sequences on rollup 0");
        handler.commitHonest(2, 0, 0); // both honest miners, first unverified sequence of rollup 0
        handler.commitHonest(2, 0, 3); // both, the second unverified one: pipelined
        handler.commitHonest(1, 1, 0); // honest 1 on rollup 1
        handler.commitOther(0, 0, 0, 1); // cheater: proof bound to honest 0
        handler.commitOther(1, 0, 0, 2); // lazy: garbage
        assertGe(handler.pipelinedCommits(), 1, "pipelined commit");
        assertEq(handler.honestCommits(), 5, "honest commits");
        handler.advance(8);
        handler.advance(8);
        assertEq(handler.honestReveals(), 5, "every honest commit revealed in its reveal phase");
        assertEq(handler.pendingHonestCount(), 0, "none pending");
        assertGe(rollups[0].lastVerifiedBatch(), handler.startAt(0, 1), "rollup 0: two sequences verified");
        assertGe(rollups[1].lastVerifiedBatch(), 1, "rollup 1 verified");
        assertGe(handler.otherInvalidReveals(), 1, "the cheater revealed its copied proof");
        handler.claim(0, 0, 1); // a valid revealer's claim
        assertEq(handler.claimsPaid(), 1, "claim");
        handler.settle(0, 3, 0, 1); // the third party settles the lazy miner on sequence 1
        handler.settle(0, 3, 0, 1); // not twice
        assertEq(handler.settlements(), 1, "settlement");
        assertEq(handler.thirdPartySettlements(), 1, "by a third party");
        handler.money(4, 3, 0); // the settler cashes its share
        assertGt(settler.balance, 0, "settler paid");
        assertGt(handler.punishmentsChecked(), 0, "penalties seen");
        assertFalse(handler.punishedBeforeRevealPhase(), "penalties in order");
        assertFalse(handler.wrongPenaltyAmount(), "amounts");
        assertFalse(handler.honestMissedRevealPhase(), "honest in time");
        assertFalse(handler.honestPunished(), "honest never punished");
    }
}
