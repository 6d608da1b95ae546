// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IGroth16BatchVerifier} from "./interfaces/IGroth16BatchVerifier.sol";
import {IMinerDeposit} from "./interfaces/IMinerDeposit.sol";
import {Owned} from "./utils/Owned.sol";

/// @title ZkPowRollup
/// @notice One per rollup. A trusted sequencer posts sequences of fixed-size batches; miners prove
///         them and submit the proofs in two steps (commit a proof hash, then reveal the proof),
///         competing for a reward per sequence. Rules (docs/CONTRACTS.md has the full text):
///
///  - Batches are numbered from 1. A sequence is the inclusive range [initNumBatch, finalNewBatch]
///    posted by one `sequenceBatches` call. Its terms (T1, T2, minimum deposit, bond, penalties)
///    and its reward are fixed when it is posted; owner changes apply to later sequences.
///  - Pipelined windows: every posted, unverified sequence takes commits, each in its own window.
///    The first commit opens a window in block O. Commit phase: O <= block < O + T1. The reveal
///    phase starts at S = max(O + T1, the block in which the predecessor sequence was verified)
///    (not before the predecessor is verified: its new root is this sequence's old root) and
///    reveal phase: S <= block < S + T2. The window ends at S + T2.
///  - A commit locks the sequence's bond (>= every penalty) of the miner's free deposit in
///    MinerDeposit and fixes the miner's reward weight (its active deposit at commit time).
///  - `verifyBatches` only in the reveal phase, only by a committer of the current window, once.
///    A proof hash mismatch or an invalid proof is penalised from the bond and the call does NOT
///    revert. A valid proof releases the bond; the first one advances lastVerifiedBatch and
///    stateRoot; later valid proofs of the same window share the reward too.
///  - After the window ended: valid revealers `claimReward` (the reward pro rata to their weight);
///    a committer without a valid proof is settled by anyone (`settleNoProof`, the caller gets
///    SETTLER_SHARE_PERCENT of the penalty), by its own next commit, or by itself. A window that
///    ended without any valid proof resets and commits open again. Nothing ends, resets or is
///    penalised for not revealing before the reveal phase really ran.
contract ZkPowRollup is Owned {
    // ------------------------------------------------------------------ constants

    uint256 public constant SCALAR_FIELD =
        0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 public constant NUM_INPUTS = 7;
    uint256 public constant PROOF_BYTES = 512;
    uint256 public constant MAX_BATCHES_PER_SEQUENCE = 64;
    uint32 public constant DEFAULT_T1 = 20;
    uint32 public constant DEFAULT_T2 = 32;
    /// Longest commit or reveal phase the owner can set (about two weeks of 12 s blocks), so that a
    /// bond is never locked for longer than a miner could foresee.
    uint32 public constant MAX_PHASE_BLOCKS = 100_000;
    /// Share of a no-proof penalty credited to whoever settles another miner's expired commit.
    uint256 public constant SETTLER_SHARE_PERCENT = 10;
    /// Gas kept back when checking that the verifier call has `verifyGas(n)` available.
    uint256 internal constant VERIFY_CALL_RESERVE = 20000;
    /// Reveal start or window end of a sequence whose predecessor is not verified yet.
    uint256 internal constant NEVER = type(uint64).max;

    // Commit record flags.
    uint256 internal constant F_REVEALED = 1;
    uint256 internal constant F_VALID = 2;
    uint256 internal constant F_PUNISHED = 4;
    uint256 internal constant F_REWARDED = 8;
    /// The bond of this commit was released or slashed.
    uint256 internal constant F_SETTLED = 16;
    uint256 internal constant WEIGHT_UNIT = 1 gwei;
    uint256 internal constant MAX_WEIGHT = type(uint56).max;

    enum PunishReason {
        WrongProofHash, // revealed proof does not match the committed hash
        InvalidProof, // proof (or roots) rejected by the verifier
        NoProof // committed, no valid proof by the end of the window
    }

    enum WindowPhase {
        None, // no sequence starts at this batch number
        NotOpen, // no commit yet in the current window
        Commit, // O <= block < O + T1
        Reveal, // S <= block < S + T2
        Ended, // block >= S + T2 (verified: rewards claimable; else: resets on the next commit)
        AwaitingPredecessor // commit phase over, the predecessor sequence is not verified yet
    }

    // ------------------------------------------------------------------ storage

    /// One storage slot, what `sequenceBatches` and `verifyBatches` read from the rollup's state.
    struct Hot {
        uint64 lastVerifiedBatch;
        uint32 termsId; // terms of sequences posted from now on
        uint128 rewardPerSequence;
    }

    /// The terms of a sequence, fixed when it is posted. One slot: everything a commit needs.
    struct Terms {
        uint32 t1;
        uint32 t2;
        uint96 minDeposit;
        uint96 bond; // max(penaltyWrongProof, penaltyNoProof)
    }

    struct Penalties {
        uint128 wrongProof;
        uint128 noProof;
    }

    /// One storage slot per sequence, keyed by initNumBatch.
    struct Sequence {
        uint64 finalNewBatch; // 0 = no sequence starts here
        uint64 openBlock; // block of the first commit of the current window, 0 = not open
        uint32 windowId; // 1 for the first window, +1 per reset
        uint32 termsId;
        uint64 verifiedBlock; // 0 = not verified
    }

    /// One storage slot per sequence, keyed by initNumBatch. Written when the sequence is posted.
    struct Reward {
        uint128 amount; // reserved from this rollup's budget when posted, shared by the valid revealers
        uint128 totalWeight; // sum of the valid revealers' weights (gwei)
    }

    /// What `commitOf` returns.
    struct CommitInfo {
        bytes16 proofHashPrefix;
        uint32 windowId;
        bool revealed;
        bool valid;
        bool punished;
        bool rewarded;
        bool settled;
        uint256 weight; // wei, a multiple of 1 gwei
    }

    /// What `termsOfSequence` returns.
    struct SequenceTerms {
        uint32 t1;
        uint32 t2;
        uint256 minDeposit;
        uint256 bond;
        uint256 penaltyWrongProof;
        uint256 penaltyNoProof;
    }

    IMinerDeposit public immutable minerDeposit;
    IGroth16BatchVerifier public immutable verifier;
    /// @notice Every batch is exactly this many bytes (20 * K for the circuit shape).
    uint256 public immutable batchSize;

    Hot private hot;
    address public sequencer;
    uint64 public lastBatch;
    uint32 private termsCount;

    mapping(uint32 => Terms) private terms;
    mapping(uint32 => Penalties) private penalties;
    mapping(uint64 => bytes32) private batchHashes;
    mapping(uint64 => Sequence) private sequences;
    mapping(uint64 => Reward) private rewards;
    /// State root after batch `b`, for b = 0 (genesis) and the last batch of every verified sequence.
    /// The old root of a sequence [init, fin] is rootAfter[init - 1]; late reveals use it.
    mapping(uint64 => bytes32) private rootAfter;
    /// Block in which the sequence ending at batch `b` was verified (b = 0: the deployment block).
    /// The reveal phase of the sequence starting at b + 1 starts no earlier.
    mapping(uint64 => uint64) private verifiedAt;
    /// Per (initNumBatch, miner), one slot: bits 255..128 the top 128 bits of the proof hash,
    /// 127..72 the reward weight in gwei, 71..40 windowId, 7..0 flags.
    mapping(uint64 => mapping(address => uint256)) private commits;

    // ------------------------------------------------------------------ events

    event SequenceBatches(uint64 indexed initNumBatch, uint64 finalNewBatch);
    event WindowOpened(uint64 indexed initNumBatch, uint32 windowId, uint64 openBlock, uint64 commitEnd);
    event ProofHashSubmitted(
        uint64 indexed initNumBatch, uint64 finalNewBatch, address indexed miner, bytes32 proofHash, uint32 windowId
    );
    event SequenceVerified(uint64 indexed initNumBatch, uint64 finalNewBatch, bytes32 newStateRoot, address indexed miner);
    event ProofAccepted(uint64 indexed initNumBatch, address indexed miner, uint32 windowId, uint256 weight, bool first);
    event Rewarded(uint64 indexed initNumBatch, address indexed miner, uint256 amount);
    /// `amount` is taken from the miner's bond; `settlerShare` of it goes to `settler`.
    event Punished(
        uint64 indexed initNumBatch,
        address indexed miner,
        PunishReason reason,
        uint256 amount,
        address settler,
        uint256 settlerShare
    );
    event WindowReset(uint64 indexed initNumBatch, uint32 expiredWindowId, uint32 newWindowId);
    event SequencerUpdated(address sequencer);
    event TermsUpdated(
        uint32 indexed termsId,
        uint32 t1,
        uint32 t2,
        uint128 minDeposit,
        uint128 penaltyWrongProof,
        uint128 penaltyNoProof
    );
    event RewardPerSequenceUpdated(uint128 rewardPerSequence);

    // ------------------------------------------------------------------ errors

    error NotSequencer();
    error InvalidSequenceLength(uint256 numBatches);
    error InvalidBatchLength(uint256 index, uint256 length, uint256 expected);
    error InvalidStateRoot();
    error InvalidBatchSize();
    error InvalidWindowLength();
    /// minDeposit must be non-zero, at least every penalty, and every amount must fit 96 bits.
    error UnsafeAmounts();
    error UnknownSequence(uint64 initNumBatch, uint64 finalNewBatch);
    error SequenceAlreadyVerified(uint64 initNumBatch);
    error CommitPhaseOver(uint64 initNumBatch, uint256 commitEnd);
    error AlreadyCommitted(uint64 initNumBatch, address miner, uint32 windowId);
    error NotCommitter(uint64 initNumBatch, address miner);
    error AlreadyRevealed(uint64 initNumBatch, address miner);
    error RevealTooEarly(uint64 initNumBatch, uint256 revealStart);
    /// The reveal phase starts only once the sequence ending at initNumBatch - 1 is verified.
    error PredecessorNotVerified(uint64 initNumBatch);
    error RevealPhaseOver(uint64 initNumBatch, uint256 revealEnd);
    error InsufficientGasForVerification(uint256 verifierGas);
    /// windowEnd = 2^64 - 1: the reveal phase has not started (predecessor unverified).
    error WindowNotEnded(uint64 initNumBatch, uint256 windowEnd);
    error NoValidProof(uint64 initNumBatch, address miner);
    error AlreadyRewarded(uint64 initNumBatch, address miner);
    error NotSettleable(uint64 initNumBatch, address miner);
    error WindowNotExpired(uint64 initNumBatch);

    // ------------------------------------------------------------------ construction

    /// @param t1_ commit phase length in blocks (0 = DEFAULT_T1)
    /// @param t2_ reveal phase length in blocks (0 = DEFAULT_T2)
    constructor(
        IMinerDeposit minerDeposit_,
        IGroth16BatchVerifier verifier_,
        address sequencer_,
        bytes32 genesisStateRoot,
        uint256 batchSize_,
        uint32 t1_,
        uint32 t2_,
        uint128 minDeposit_,
        uint128 rewardPerSequence_,
        uint128 penaltyWrongProof_,
        uint128 penaltyNoProof_
    ) Owned(msg.sender) {
        if (address(minerDeposit_) == address(0) || address(verifier_) == address(0) || sequencer_ == address(0)) {
            revert ZeroAddress();
        }
        if (uint256(genesisStateRoot) >= SCALAR_FIELD) revert InvalidStateRoot();
        if (batchSize_ == 0) revert InvalidBatchSize();
        minerDeposit = minerDeposit_;
        verifier = verifier_;
        batchSize = batchSize_;
        sequencer = sequencer_;
        rootAfter[0] = genesisStateRoot;
        verifiedAt[0] = uint64(block.number);
        hot.rewardPerSequence = rewardPerSequence_;
        _newTerms(
            t1_ == 0 ? DEFAULT_T1 : t1_, t2_ == 0 ? DEFAULT_T2 : t2_, minDeposit_, penaltyWrongProof_, penaltyNoProof_
        );
        emit SequencerUpdated(sequencer_);
        emit RewardPerSequenceUpdated(rewardPerSequence_);
    }

    // ------------------------------------------------------------------ owner

    function setSequencer(address sequencer_) external onlyOwner {
        if (sequencer_ == address(0)) revert ZeroAddress();
        sequencer = sequencer_;
        emit SequencerUpdated(sequencer_);
    }

    /// @notice New lengths apply to sequences posted afterwards.
    function setWindowLengths(uint32 t1_, uint32 t2_) external onlyOwner {
        Terms memory t = terms[hot.termsId];
        Penalties memory p = penalties[hot.termsId];
        _newTerms(t1_, t2_, t.minDeposit, p.wrongProof, p.noProof);
    }

    /// @notice New amounts apply to sequences posted afterwards: a posted sequence keeps its reward,
    ///         bond and penalties. minDeposit must be non-zero and at least every penalty.
    function setAmounts(uint128 minDeposit_, uint128 rewardPerSequence_, uint128 penaltyWrongProof_, uint128 penaltyNoProof_)
        external
        onlyOwner
    {
        Terms memory t = terms[hot.termsId];
        _newTerms(t.t1, t.t2, minDeposit_, penaltyWrongProof_, penaltyNoProof_);
        hot.rewardPerSequence = rewardPerSequence_;
        emit RewardPerSequenceUpdated(rewardPerSequence_);
    }

    // ------------------------------------------------------------------ sequencer

    /// @notice Posts a sequence of batches, each exactly `batchSize` bytes. Stores sha256 of every
    ///         batch (the batch bytes stay in the transaction input), fixes the sequence's terms and
    ///         reserves its reward from this rollup's budget (less, or nothing, when the budget is
    ///         short: posting never fails for lack of reward funds).
    function sequenceBatches(bytes[] calldata batches) external returns (uint64 initNumBatch, uint64 finalNewBatch) {
        if (msg.sender != sequencer) revert NotSequencer();
        uint256 n = batches.length;
        if (n == 0 || n > MAX_BATCHES_PER_SEQUENCE) revert InvalidSequenceLength(n);
        uint256 size = batchSize;
        initNumBatch = lastBatch + 1;
        for (uint256 i; i < n; ++i) {
            if (batches[i].length != size) revert InvalidBatchLength(i, batches[i].length, size);
            batchHashes[initNumBatch + uint64(i)] = sha256(batches[i]);
        }
        finalNewBatch = initNumBatch + uint64(n - 1);
        Hot memory h = hot;
        sequences[initNumBatch] =
            Sequence({finalNewBatch: finalNewBatch, openBlock: 0, windowId: 1, termsId: h.termsId, verifiedBlock: 0});
        uint256 reserved;
        if (h.rewardPerSequence != 0) {
            // A retired rollup (or a failing deposit contract) must not stop the sequencer.
            try minerDeposit.reserveReward(h.rewardPerSequence) returns (uint256 r) {
                reserved = r;
            } catch {}
        }
        // reserved <= rewardPerSequence < 2^128
        rewards[initNumBatch] = Reward({amount: uint128(reserved), totalWeight: 0});
        lastBatch = finalNewBatch;
        emit SequenceBatches(initNumBatch, finalNewBatch);
    }

    // ------------------------------------------------------------------ miners

    /// @notice Step 1: commit to a proof of the sequence [initNumBatch, finalNewBatch] and lock the
    ///         sequence's bond from msg.sender's free deposit.
    /// @param proofHash keccak256(abi.encodePacked(keccak256(proof), msg.sender)), see `proofHashOf`.
    function submitProofHash(uint64 initNumBatch, uint64 finalNewBatch, bytes32 proofHash) external {
        Sequence storage sp = sequences[initNumBatch];
        Sequence memory s = sp;
        if (s.finalNewBatch == 0 || s.finalNewBatch != finalNewBatch) revert UnknownSequence(initNumBatch, finalNewBatch);
        if (s.verifiedBlock != 0) revert SequenceAlreadyVerified(initNumBatch);
        Terms memory t = terms[s.termsId];

        bool open = s.openBlock == 0;
        if (!open) {
            uint256 commitEnd = uint256(s.openBlock) + t.t1;
            if (block.number >= commitEnd) {
                // Only a window whose reveal phase ran (and ended without a valid proof: the
                // sequence is unverified) resets; this commit opens the next one.
                if (block.number < _windowEnd(initNumBatch, s, t)) revert CommitPhaseOver(initNumBatch, commitEnd);
                emit WindowReset(initNumBatch, s.windowId, s.windowId + 1);
                s.windowId += 1;
                open = true;
            }
        }

        uint256 c = commits[initNumBatch][msg.sender];
        if (c != 0) {
            if (_windowOf(c) == s.windowId) revert AlreadyCommitted(initNumBatch, msg.sender, s.windowId);
            // A commit of an earlier window, which ended without the miner's valid proof (it ended
            // unverified). Its bond is still locked unless it was settled already.
            if (c & F_SETTLED == 0) {
                _slash(initNumBatch, msg.sender, t.bond, penalties[s.termsId].noProof, PunishReason.NoProof, msg.sender);
            }
        }

        uint256 weight = minerDeposit.lock(msg.sender, t.bond, t.minDeposit) / WEIGHT_UNIT;
        if (weight == 0) weight = 1;
        else if (weight > MAX_WEIGHT) weight = MAX_WEIGHT;
        commits[initNumBatch][msg.sender] = (uint256(proofHash) >> 128 << 128) | (weight << 72) | (uint256(s.windowId) << 40);
        if (open) {
            sp.openBlock = uint64(block.number);
            sp.windowId = s.windowId;
            emit WindowOpened(initNumBatch, s.windowId, uint64(block.number), uint64(block.number) + t.t1);
        }
        emit ProofHashSubmitted(initNumBatch, finalNewBatch, msg.sender, proofHash, s.windowId);
    }

    /// @notice Step 2: reveal the proof of the sequence [initNumBatch, finalNewBatch].
    /// @param newStateRoot state root after finalNewBatch
    /// @param roots the n - 1 state roots after batches initNumBatch .. finalNewBatch - 1
    /// @param proof the n batch proofs concatenated in batch order (512 * n bytes)
    /// @return valid whether the proof was accepted. A wrong proof hash or an invalid proof does not
    ///         revert: the penalty is taken from the bond and false is returned.
    function verifyBatches(
        uint64 initNumBatch,
        uint64 finalNewBatch,
        bytes32 newStateRoot,
        bytes32[] calldata roots,
        bytes calldata proof
    ) external returns (bool valid) {
        Sequence memory s = sequences[initNumBatch];
        if (s.finalNewBatch == 0 || s.finalNewBatch != finalNewBatch) revert UnknownSequence(initNumBatch, finalNewBatch);
        uint256 c = commits[initNumBatch][msg.sender];
        if (c == 0 || s.openBlock == 0 || _windowOf(c) != s.windowId) revert NotCommitter(initNumBatch, msg.sender);
        if (c & F_REVEALED != 0) revert AlreadyRevealed(initNumBatch, msg.sender);
        Terms memory t = terms[s.termsId];
        {
            uint256 commitEnd = uint256(s.openBlock) + t.t1;
            if (block.number < commitEnd) revert RevealTooEarly(initNumBatch, commitEnd);
            uint256 start = _revealStart(initNumBatch, s, t);
            if (start == NEVER) revert PredecessorNotVerified(initNumBatch);
            if (block.number >= start + t.t2) revert RevealPhaseOver(initNumBatch, start + t.t2);
        }

        if (proofHashOf(proof, msg.sender) >> 128 != bytes32(c) >> 128) {
            commits[initNumBatch][msg.sender] = c | F_REVEALED | F_PUNISHED | F_SETTLED;
            _slash(initNumBatch, msg.sender, t.bond, penalties[s.termsId].wrongProof, PunishReason.WrongProofHash, address(0));
            return false;
        }
        bool verified = s.verifiedBlock != 0;
        if (!_checkProof(initNumBatch, finalNewBatch, verified, newStateRoot, roots, proof)) {
            commits[initNumBatch][msg.sender] = c | F_REVEALED | F_PUNISHED | F_SETTLED;
            _slash(initNumBatch, msg.sender, t.bond, penalties[s.termsId].wrongProof, PunishReason.InvalidProof, address(0));
            return false;
        }
        commits[initNumBatch][msg.sender] = c | F_REVEALED | F_VALID | F_SETTLED;
        minerDeposit.unlock(msg.sender, t.bond);
        uint256 weight = _weightOf(c);
        if (!verified) {
            sequences[initNumBatch].verifiedBlock = uint64(block.number);
            rootAfter[finalNewBatch] = newStateRoot;
            verifiedAt[finalNewBatch] = uint64(block.number);
            hot.lastVerifiedBatch = finalNewBatch;
            emit SequenceVerified(initNumBatch, finalNewBatch, newStateRoot, msg.sender);
        }
        // weight < 2^56: the sum over all committers cannot reach 2^128.
        rewards[initNumBatch].totalWeight += uint128(weight);
        emit ProofAccepted(initNumBatch, msg.sender, s.windowId, weight * WEIGHT_UNIT, !verified);
        return true;
    }

    /// @notice After the window of a verified sequence ended, pays msg.sender's share of the
    ///         sequence reward (reward * weight / totalWeight) through MinerDeposit.reward.
    function claimReward(uint64 initNumBatch) external returns (uint256 amount) {
        uint256 c = commits[initNumBatch][msg.sender];
        if (c & F_VALID == 0) revert NoValidProof(initNumBatch, msg.sender);
        if (c & F_REWARDED != 0) revert AlreadyRewarded(initNumBatch, msg.sender);
        Sequence memory s = sequences[initNumBatch];
        uint256 end = _windowEnd(initNumBatch, s, terms[s.termsId]);
        if (block.number < end) revert WindowNotEnded(initNumBatch, end);
        commits[initNumBatch][msg.sender] = c | F_REWARDED;
        Reward memory rw = rewards[initNumBatch];
        amount = uint256(rw.amount) * _weightOf(c) / rw.totalWeight;
        emit Rewarded(initNumBatch, msg.sender, amount);
        if (amount != 0) minerDeposit.reward(msg.sender, amount);
    }

    /// @notice Anyone: settle the commit of `miner` to a window of this sequence that has ended
    ///         without a valid proof from them. The no-proof penalty is taken from the bond and the
    ///         rest of the bond is released; a caller other than the miner is credited
    ///         SETTLER_SHARE_PERCENT of the penalty.
    function settleNoProof(uint64 initNumBatch, address miner) external {
        uint256 c = commits[initNumBatch][miner];
        if (c == 0 || c & F_SETTLED != 0) revert NotSettleable(initNumBatch, miner);
        Sequence memory s = sequences[initNumBatch];
        Terms memory t = terms[s.termsId];
        // A commit of an earlier window: that window ended (windows reset only after their end).
        if (_windowOf(c) == s.windowId) {
            uint256 end = _windowEnd(initNumBatch, s, t);
            if (block.number < end) revert WindowNotEnded(initNumBatch, end);
        }
        commits[initNumBatch][miner] = c | F_PUNISHED | F_SETTLED;
        _slash(initNumBatch, miner, t.bond, penalties[s.termsId].noProof, PunishReason.NoProof, msg.sender);
    }

    /// @notice Anyone: reset a window that ended with no valid proof, so that commits open again
    ///         (the next commit opens the new window). `submitProofHash` does this by itself too.
    ///         The expired window's committers are settled one by one (`settleNoProof`, or their
    ///         own next commit): their bonds stay locked until then.
    function resetWindow(uint64 initNumBatch) external {
        Sequence storage sp = sequences[initNumBatch];
        Sequence memory s = sp;
        if (
            s.finalNewBatch == 0 || s.verifiedBlock != 0 || s.openBlock == 0
                || block.number < _windowEnd(initNumBatch, s, terms[s.termsId])
        ) {
            revert WindowNotExpired(initNumBatch);
        }
        sp.windowId = s.windowId + 1;
        sp.openBlock = 0;
        emit WindowReset(initNumBatch, s.windowId, s.windowId + 1);
    }

    // ------------------------------------------------------------------ views

    /// @notice keccak256(abi.encodePacked(keccak256(proof), miner)): the value to commit.
    function proofHashOf(bytes calldata proof, address miner) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(keccak256(proof), miner));
    }

    /// @notice The `domain` public input: keccak256(chainid, this) truncated to 248 bits.
    function domain() public view returns (uint256) {
        return uint256(keccak256(abi.encodePacked(block.chainid, address(this)))) >> 8;
    }

    function lastVerifiedBatch() external view returns (uint64) {
        return hot.lastVerifiedBatch;
    }

    /// @notice Commit phase length (blocks) of sequences posted from now on.
    function t1() external view returns (uint32) {
        return terms[hot.termsId].t1;
    }

    /// @notice Reveal phase length (blocks) of sequences posted from now on.
    function t2() external view returns (uint32) {
        return terms[hot.termsId].t2;
    }

    /// @notice Minimum active deposit to commit, for sequences posted from now on.
    function minDeposit() external view returns (uint256) {
        return terms[hot.termsId].minDeposit;
    }

    /// @notice Bond a commit locks, for sequences posted from now on.
    function bond() external view returns (uint256) {
        return terms[hot.termsId].bond;
    }

    function penaltyWrongProof() external view returns (uint256) {
        return penalties[hot.termsId].wrongProof;
    }

    function penaltyNoProof() external view returns (uint256) {
        return penalties[hot.termsId].noProof;
    }

    function rewardPerSequence() external view returns (uint128) {
        return hot.rewardPerSequence;
    }

    /// @notice Id of the terms of sequences posted from now on (+1 per owner change).
    function currentTermsId() external view returns (uint32) {
        return hot.termsId;
    }

    /// @notice sha256 of the bytes of batch `numBatch` (zero if not posted).
    function batchHash(uint64 numBatch) external view returns (bytes32) {
        return batchHashes[numBatch];
    }

    /// @notice The sequence starting at `initNumBatch` (finalNewBatch = 0: none), its current window
    ///         and its phase lengths.
    function sequence(uint64 initNumBatch)
        external
        view
        returns (uint64 finalNewBatch, uint64 openBlock, uint32 windowId, uint32 windowT1, uint32 windowT2, bool verified)
    {
        Sequence memory s = sequences[initNumBatch];
        Terms memory t = terms[s.termsId];
        return (s.finalNewBatch, s.openBlock, s.windowId, t.t1, t.t2, s.verifiedBlock != 0);
    }

    /// @notice The terms the sequence was posted with.
    function termsOfSequence(uint64 initNumBatch) external view returns (SequenceTerms memory st) {
        uint32 id = sequences[initNumBatch].termsId;
        Terms memory t = terms[id];
        Penalties memory p = penalties[id];
        return SequenceTerms(t.t1, t.t2, t.minDeposit, t.bond, p.wrongProof, p.noProof);
    }

    /// @notice Phase of the current window of a sequence and its boundaries, exclusive ends. Zero
    ///         when not known yet: all of them before the window opens; revealStart and revealEnd
    ///         while the predecessor sequence is unverified.
    function windowStatus(uint64 initNumBatch)
        external
        view
        returns (WindowPhase phase, uint32 windowId, uint64 openBlock, uint64 commitEnd, uint64 revealStart, uint64 revealEnd)
    {
        Sequence memory s = sequences[initNumBatch];
        if (s.finalNewBatch == 0) return (WindowPhase.None, 0, 0, 0, 0, 0);
        windowId = s.windowId;
        if (s.openBlock == 0) return (WindowPhase.NotOpen, windowId, 0, 0, 0, 0);
        Terms memory t = terms[s.termsId];
        openBlock = s.openBlock;
        commitEnd = openBlock + t.t1;
        uint256 start = _revealStart(initNumBatch, s, t);
        if (start != NEVER) {
            revealStart = uint64(start);
            revealEnd = uint64(start + t.t2);
        }
        if (block.number < commitEnd) phase = WindowPhase.Commit;
        else if (start == NEVER) phase = WindowPhase.AwaitingPredecessor;
        else if (block.number < revealEnd) phase = WindowPhase.Reveal;
        else phase = WindowPhase.Ended;
    }

    /// @notice The commit of `miner` for a sequence (its latest window). windowId = 0: no commit.
    function commitOf(uint64 initNumBatch, address miner) external view returns (CommitInfo memory info) {
        uint256 c = commits[initNumBatch][miner];
        info.proofHashPrefix = bytes16(bytes32(c));
        info.weight = _weightOf(c) * WEIGHT_UNIT;
        info.windowId = _windowOf(c);
        info.revealed = c & F_REVEALED != 0;
        info.valid = c & F_VALID != 0;
        info.punished = c & F_PUNISHED != 0;
        info.rewarded = c & F_REWARDED != 0;
        info.settled = c & F_SETTLED != 0;
    }

    /// @notice Current state root: the root after lastVerifiedBatch.
    function stateRoot() public view returns (bytes32) {
        return rootAfter[hot.lastVerifiedBatch];
    }

    /// @notice State root after batch `numBatch`, known for 0 (genesis) and for the last batch of
    ///         every verified sequence (zero otherwise).
    function stateRootAt(uint64 numBatch) external view returns (bytes32) {
        return rootAfter[numBatch];
    }

    /// @notice Block in which the sequence ending at `numBatch` was verified (0: not verified;
    ///         numBatch = 0: the deployment block).
    function verifiedAtBlock(uint64 numBatch) external view returns (uint64) {
        return verifiedAt[numBatch];
    }

    /// @notice Roots of a verified sequence (zeros before it is verified), its reward (reserved when
    ///         it was posted) and the sum of the valid revealers' weights (gwei).
    function verification(uint64 initNumBatch)
        external
        view
        returns (bytes32 oldRoot, bytes32 newRoot, uint128 reward, uint128 totalWeight)
    {
        Sequence memory s = sequences[initNumBatch];
        if (s.verifiedBlock != 0) {
            oldRoot = rootAfter[initNumBatch - 1];
            newRoot = rootAfter[s.finalNewBatch];
        }
        Reward memory rw = rewards[initNumBatch];
        return (oldRoot, newRoot, rw.amount, rw.totalWeight);
    }

    /// @notice The 7 public inputs of batch `numBatch` for the given roots and miner.
    function publicInputs(uint64 numBatch, bytes32 oldRoot, bytes32 newRoot, address miner)
        external
        view
        returns (uint256[7] memory x)
    {
        uint256 dh = uint256(batchHashes[numBatch]);
        x = [domain(), uint256(numBatch), uint256(oldRoot), uint256(newRoot), dh >> 128, dh & type(uint128).max, uint256(uint160(miner))];
    }

    // ------------------------------------------------------------------ internal

    function _windowOf(uint256 c) private pure returns (uint32) {
        return uint32(c >> 40);
    }

    function _weightOf(uint256 c) private pure returns (uint256) {
        return (c >> 72) & MAX_WEIGHT;
    }

    /// First block of the reveal phase of the open window: max(O + T1, block in which the
    /// predecessor was verified); NEVER while the predecessor is unverified.
    function _revealStart(uint64 initNumBatch, Sequence memory s, Terms memory t) private view returns (uint256) {
        if (hot.lastVerifiedBatch + 1 < initNumBatch) return NEVER;
        uint256 start = uint256(s.openBlock) + t.t1;
        uint256 pred = verifiedAt[initNumBatch - 1];
        return pred > start ? pred : start;
    }

    /// First block after the reveal phase of the open window; NEVER while it has not started.
    function _windowEnd(uint64 initNumBatch, Sequence memory s, Terms memory t) private view returns (uint256) {
        uint256 start = _revealStart(initNumBatch, s, t);
        return start == NEVER ? NEVER : start + t.t2;
    }

    function _newTerms(uint32 t1_, uint32 t2_, uint128 minDeposit_, uint128 wrongProof, uint128 noProof) private {
        if (t1_ == 0 || t2_ == 0 || t1_ > MAX_PHASE_BLOCKS || t2_ > MAX_PHASE_BLOCKS) revert InvalidWindowLength();
        uint128 bond_ = wrongProof > noProof ? wrongProof : noProof;
        if (minDeposit_ == 0 || minDeposit_ < bond_ || minDeposit_ > type(uint96).max) revert UnsafeAmounts();
        uint32 id = termsCount + 1;
        termsCount = id;
        // bond_ <= minDeposit_ < 2^96
        terms[id] = Terms({t1: t1_, t2: t2_, minDeposit: uint96(minDeposit_), bond: uint96(bond_)});
        penalties[id] = Penalties({wrongProof: wrongProof, noProof: noProof});
        hot.termsId = id;
        emit TermsUpdated(id, t1_, t2_, minDeposit_, wrongProof, noProof);
    }

    /// Builds the 7 * n public inputs and asks the verifier. A revert of the verifier counts as an
    /// invalid proof, except for lack of gas, which reverts the transaction so that a low gas
    /// limit can never get an honest miner penalised.
    function _checkProof(
        uint64 initNumBatch,
        uint64 finalNewBatch,
        bool verified,
        bytes32 newStateRoot,
        bytes32[] calldata roots,
        bytes calldata proof
    ) private view returns (bool) {
        uint256 n = uint256(finalNewBatch) - initNumBatch + 1;
        if (roots.length != n - 1) return false;
        // A later proof of the same sequence must prove the same transition.
        if (verified && newStateRoot != rootAfter[finalNewBatch]) return false;
        bytes32 prev = rootAfter[initNumBatch - 1];
        return _callVerifier(_buildInputs(initNumBatch, n, prev, newStateRoot, roots), proof, n);
    }

    /// The public inputs of the n batches from initNumBatch, roots chained from oldRoot.
    function _buildInputs(uint64 initNumBatch, uint256 n, bytes32 oldRoot, bytes32 newStateRoot, bytes32[] calldata roots)
        private
        view
        returns (uint256[] memory inputs)
    {
        inputs = new uint256[](NUM_INPUTS * n);
        uint256 dom = domain();
        bytes32 prev = oldRoot;
        for (uint256 i; i < n; ++i) {
            bytes32 next = i + 1 < n ? roots[i] : newStateRoot;
            uint256 dh = uint256(batchHashes[initNumBatch + uint64(i)]);
            uint256 o = NUM_INPUTS * i;
            inputs[o] = dom;
            inputs[o + 1] = initNumBatch + i;
            inputs[o + 2] = uint256(prev);
            inputs[o + 3] = uint256(next);
            inputs[o + 4] = dh >> 128;
            inputs[o + 5] = dh & type(uint128).max;
            inputs[o + 6] = uint160(msg.sender);
            prev = next;
        }
    }

    function _callVerifier(uint256[] memory inputs, bytes calldata proof, uint256 n) private view returns (bool) {
        IGroth16BatchVerifier ver = verifier;
        uint256 need = ver.verifyGas(n);
        if (gasleft() < need + need / 63 + VERIFY_CALL_RESERVE) revert InsufficientGasForVerification(need);
        try ver.verify(inputs, proof) returns (bool ok) {
            return ok;
        } catch (bytes memory err) {
            if (err.length >= 4 && bytes4(err) == IGroth16BatchVerifier.InsufficientGas.selector) {
                revert InsufficientGasForVerification(need);
            }
            return false;
        }
    }

    /// Takes `penalty` from the miner's bond of this sequence and releases the rest.
    function _slash(uint64 initNumBatch, address miner, uint256 bond_, uint256 penalty, PunishReason reason, address settler)
        private
    {
        uint256 share = settler != address(0) && settler != miner ? penalty * SETTLER_SHARE_PERCENT / 100 : 0;
        emit Punished(initNumBatch, miner, reason, penalty, settler, share);
        minerDeposit.slash(miner, bond_, penalty, settler, share);
    }
}
