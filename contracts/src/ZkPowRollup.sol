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
///    posted by one `sequenceBatches` call.
///  - Proof window of a sequence, block-based, opened by the first commit in block O, with T1 and
///    T2 fixed when it opens:  commit phase  O <= block < O + T1,
///                             reveal phase  O + T1 <= block < O + T1 + T2,
///                             ended         block >= O + T1 + T2.
///  - `submitProofHash` needs deposit >= minDeposit, the exact range of a posted, unverified
///    sequence that starts at lastVerifiedBatch + 1, and the commit phase (or no open window);
///    one commit per miner per window.
///  - `verifyBatches` only in the reveal phase, only by a committer of the current window, once.
///    A proof hash mismatch or an invalid proof is penalised and the call does NOT revert. The first
///    valid proof advances lastVerifiedBatch and stateRoot; later valid proofs of the same window
///    count for the reward too.
///  - After the window ended: valid revealers `claimReward` (rewardPerSequence pro rata to their
///    deposit at reveal time); committers without a valid proof can be `punishNoProof`-ed by anyone.
///    A window that ended without any valid proof resets (lazily on the next commit, or through
///    `resetWindow`) and commits open again.
contract ZkPowRollup is Owned {
    // ------------------------------------------------------------------ constants

    uint256 public constant SCALAR_FIELD =
        0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 public constant NUM_INPUTS = 7;
    uint256 public constant PROOF_BYTES = 512;
    uint256 public constant MAX_BATCHES_PER_SEQUENCE = 64;
    uint32 public constant DEFAULT_T1 = 20;
    uint32 public constant DEFAULT_T2 = 32;
    /// Gas kept back when checking that the verifier call has `verifyGas(n)` available.
    uint256 internal constant VERIFY_CALL_RESERVE = 20000;

    // Commit record flags.
    uint256 internal constant F_REVEALED = 1;
    uint256 internal constant F_VALID = 2;
    uint256 internal constant F_PUNISHED = 4;
    uint256 internal constant F_REWARDED = 8;

    enum PunishReason {
        WrongProofHash, // revealed proof does not match the committed hash
        InvalidProof, // proof (or roots) rejected by the verifier
        NoProof // committed, no valid proof by the end of the window
    }

    enum WindowPhase {
        None, // no sequence starts at this batch number
        NotOpen, // no commit yet in the current window
        Commit, // O <= block < O + T1
        Reveal, // O + T1 <= block < O + T1 + T2
        Ended // block >= O + T1 + T2 (verified: rewards claimable; else: resets on the next commit)
    }

    // ------------------------------------------------------------------ storage

    /// One storage slot, everything `submitProofHash` reads from the rollup's own state.
    struct Hot {
        uint64 lastVerifiedBatch;
        uint32 t1;
        uint32 t2;
        uint128 minDeposit;
    }

    /// One storage slot per sequence, keyed by initNumBatch.
    struct Sequence {
        uint64 finalNewBatch; // 0 = no sequence starts here
        uint64 openBlock; // block of the first commit of the current window, 0 = not open
        uint32 windowId; // 1 for the first window, +1 per reset
        uint32 t1; // T1 of the current window, fixed when it opened
        uint32 t2; // T2 of the current window, fixed when it opened
        bool verified;
    }

    /// One storage slot per sequence, keyed by initNumBatch. Written when the sequence is posted
    /// (so that the first valid reveal updates a non-zero slot).
    struct Reward {
        uint128 amount; // rewardPerSequence when the sequence was posted, shared by the valid revealers
        uint128 totalWeight; // sum of the valid revealers' weights
    }

    /// What `commitOf` returns.
    struct CommitInfo {
        bytes24 proofHashPrefix;
        uint32 windowId;
        bool revealed;
        bool valid;
        bool punished;
        bool rewarded;
        uint256 weight;
    }

    IMinerDeposit public immutable minerDeposit;
    IGroth16BatchVerifier public immutable verifier;
    /// @notice Every batch is exactly this many bytes (20 * K for the circuit shape).
    uint256 public immutable batchSize;

    Hot private hot;
    address public sequencer;
    uint64 public lastBatch;
    uint128 public rewardPerSequence;
    uint128 public penaltyWrongProof;
    uint128 public penaltyNoProof;

    mapping(uint64 => bytes32) private batchHashes;
    mapping(uint64 => Sequence) private sequences;
    mapping(uint64 => Reward) private rewards;
    /// State root after batch `b`, for b = 0 (genesis) and the last batch of every verified sequence.
    /// The old root of a sequence [init, fin] is rootAfter[init - 1]; late reveals use it.
    mapping(uint64 => bytes32) private rootAfter;
    /// Per (initNumBatch, miner), one slot: bits 255..64 data, 63..32 windowId, 7..0 flags. The data
    /// is the top 192 bits of the proof hash until a valid reveal, then the miner's reward weight.
    mapping(uint64 => mapping(address => uint256)) private commits;

    // ------------------------------------------------------------------ events

    event SequenceBatches(uint64 indexed initNumBatch, uint64 finalNewBatch);
    event WindowOpened(uint64 indexed initNumBatch, uint32 windowId, uint64 openBlock, uint64 commitEnd, uint64 revealEnd);
    event ProofHashSubmitted(
        uint64 indexed initNumBatch, uint64 finalNewBatch, address indexed miner, bytes32 proofHash, uint32 windowId
    );
    event SequenceVerified(uint64 indexed initNumBatch, uint64 finalNewBatch, bytes32 newStateRoot, address indexed miner);
    event ProofAccepted(uint64 indexed initNumBatch, address indexed miner, uint32 windowId, uint256 weight, bool first);
    event Rewarded(uint64 indexed initNumBatch, address indexed miner, uint256 amount);
    event Punished(uint64 indexed initNumBatch, address indexed miner, PunishReason reason, uint256 amount, uint256 taken);
    event WindowReset(uint64 indexed initNumBatch, uint32 expiredWindowId, uint32 newWindowId);
    event SequencerUpdated(address sequencer);
    event WindowLengthsUpdated(uint32 t1, uint32 t2);
    event AmountsUpdated(uint128 minDeposit, uint128 rewardPerSequence, uint128 penaltyWrongProof, uint128 penaltyNoProof);

    // ------------------------------------------------------------------ errors

    error NotSequencer();
    error InvalidSequenceLength(uint256 numBatches);
    error InvalidBatchLength(uint256 index, uint256 length, uint256 expected);
    error InvalidStateRoot();
    error InvalidBatchSize();
    error InvalidWindowLength();
    error UnknownSequence(uint64 initNumBatch, uint64 finalNewBatch);
    error SequenceAlreadyVerified(uint64 initNumBatch);
    error NotNextSequence(uint64 initNumBatch, uint64 expected);
    error InsufficientDeposit(uint256 deposit, uint256 required);
    error CommitPhaseOver(uint64 initNumBatch, uint256 commitEnd);
    error AlreadyCommitted(uint64 initNumBatch, address miner, uint32 windowId);
    error NotCommitter(uint64 initNumBatch, address miner);
    error AlreadyRevealed(uint64 initNumBatch, address miner);
    error RevealTooEarly(uint64 initNumBatch, uint256 revealStart);
    error RevealPhaseOver(uint64 initNumBatch, uint256 revealEnd);
    error InsufficientGasForVerification(uint256 verifierGas);
    error WindowNotEnded(uint64 initNumBatch, uint256 windowEnd);
    error NoValidProof(uint64 initNumBatch, address miner);
    error AlreadyRewarded(uint64 initNumBatch, address miner);
    error NotPunishable(uint64 initNumBatch, address miner);
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
        uint32 t1v = t1_ == 0 ? DEFAULT_T1 : t1_;
        uint32 t2v = t2_ == 0 ? DEFAULT_T2 : t2_;
        hot = Hot({lastVerifiedBatch: 0, t1: t1v, t2: t2v, minDeposit: minDeposit_});
        rewardPerSequence = rewardPerSequence_;
        penaltyWrongProof = penaltyWrongProof_;
        penaltyNoProof = penaltyNoProof_;
        emit SequencerUpdated(sequencer_);
        emit WindowLengthsUpdated(t1v, t2v);
        emit AmountsUpdated(minDeposit_, rewardPerSequence_, penaltyWrongProof_, penaltyNoProof_);
    }

    // ------------------------------------------------------------------ owner

    function setSequencer(address sequencer_) external onlyOwner {
        if (sequencer_ == address(0)) revert ZeroAddress();
        sequencer = sequencer_;
        emit SequencerUpdated(sequencer_);
    }

    /// @notice New lengths apply to windows opened afterwards; an open window keeps its T1 and T2.
    function setWindowLengths(uint32 t1_, uint32 t2_) external onlyOwner {
        if (t1_ == 0 || t2_ == 0) revert InvalidWindowLength();
        hot.t1 = t1_;
        hot.t2 = t2_;
        emit WindowLengthsUpdated(t1_, t2_);
    }

    /// @notice The reward of a sequence is fixed when it is posted; penalties apply when imposed.
    function setAmounts(uint128 minDeposit_, uint128 rewardPerSequence_, uint128 penaltyWrongProof_, uint128 penaltyNoProof_)
        external
        onlyOwner
    {
        hot.minDeposit = minDeposit_;
        rewardPerSequence = rewardPerSequence_;
        penaltyWrongProof = penaltyWrongProof_;
        penaltyNoProof = penaltyNoProof_;
        emit AmountsUpdated(minDeposit_, rewardPerSequence_, penaltyWrongProof_, penaltyNoProof_);
    }

    // ------------------------------------------------------------------ sequencer

    /// @notice Posts a sequence of batches, each exactly `batchSize` bytes. Stores sha256 of every
    ///         batch; the batch bytes themselves stay in the transaction input.
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
        sequences[initNumBatch] =
            Sequence({finalNewBatch: finalNewBatch, openBlock: 0, windowId: 1, t1: 0, t2: 0, verified: false});
        rewards[initNumBatch] = Reward({amount: rewardPerSequence, totalWeight: 0});
        lastBatch = finalNewBatch;
        emit SequenceBatches(initNumBatch, finalNewBatch);
    }

    // ------------------------------------------------------------------ miners

    /// @notice Step 1: commit to a proof of the sequence [initNumBatch, finalNewBatch].
    /// @param proofHash keccak256(abi.encodePacked(keccak256(proof), msg.sender)), see `proofHashOf`.
    function submitProofHash(uint64 initNumBatch, uint64 finalNewBatch, bytes32 proofHash) external {
        Hot memory h = hot;
        Sequence storage sp = sequences[initNumBatch];
        Sequence memory s = sp;
        if (s.finalNewBatch == 0 || s.finalNewBatch != finalNewBatch) revert UnknownSequence(initNumBatch, finalNewBatch);
        if (s.verified) revert SequenceAlreadyVerified(initNumBatch);
        if (initNumBatch != h.lastVerifiedBatch + 1) revert NotNextSequence(initNumBatch, h.lastVerifiedBatch + 1);
        uint256 dep = minerDeposit.depositOf(msg.sender);
        if (dep < h.minDeposit) revert InsufficientDeposit(dep, h.minDeposit);

        bool open;
        if (s.openBlock == 0) {
            open = true;
        } else {
            uint256 commitEnd = uint256(s.openBlock) + s.t1;
            if (block.number >= commitEnd + s.t2) {
                // Ended without a valid proof (the sequence is unverified): reset, this commit opens
                // the next window.
                uint32 expired = s.windowId;
                s.windowId = expired + 1;
                emit WindowReset(initNumBatch, expired, s.windowId);
                open = true;
            } else if (block.number >= commitEnd) {
                revert CommitPhaseOver(initNumBatch, commitEnd);
            }
        }

        uint256 c = commits[initNumBatch][msg.sender];
        bool punishStale;
        if (c != 0) {
            if (_windowOf(c) == s.windowId) revert AlreadyCommitted(initNumBatch, msg.sender, s.windowId);
            // A commit of an earlier, expired window without a valid proof (an expired window never
            // had one). Its no-proof penalty is due; impose it now unless already imposed.
            punishStale = c & F_PUNISHED == 0;
        }

        commits[initNumBatch][msg.sender] = (uint256(proofHash) >> 64 << 64) | (uint256(s.windowId) << 32);
        if (open) {
            sp.openBlock = uint64(block.number);
            sp.windowId = s.windowId;
            sp.t1 = h.t1;
            sp.t2 = h.t2;
            emit WindowOpened(
                initNumBatch,
                s.windowId,
                uint64(block.number),
                uint64(block.number) + h.t1,
                uint64(block.number) + h.t1 + h.t2
            );
        }
        emit ProofHashSubmitted(initNumBatch, finalNewBatch, msg.sender, proofHash, s.windowId);
        if (punishStale) _punish(initNumBatch, msg.sender, PunishReason.NoProof, penaltyNoProof);
    }

    /// @notice Step 2: reveal the proof of the sequence [initNumBatch, finalNewBatch].
    /// @param newStateRoot state root after finalNewBatch
    /// @param roots the n - 1 state roots after batches initNumBatch .. finalNewBatch - 1
    /// @param proof the n batch proofs concatenated in batch order (512 * n bytes)
    /// @return valid whether the proof was accepted. A wrong proof hash or an invalid proof does not
    ///         revert: the miner is penalised and false is returned.
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
        {
            uint256 revealStart = uint256(s.openBlock) + s.t1;
            if (block.number < revealStart) revert RevealTooEarly(initNumBatch, revealStart);
            if (block.number >= revealStart + s.t2) revert RevealPhaseOver(initNumBatch, revealStart + s.t2);
        }

        if (proofHashOf(proof, msg.sender) >> 64 != bytes32(c) >> 64) {
            commits[initNumBatch][msg.sender] = c | F_REVEALED | F_PUNISHED;
            _punish(initNumBatch, msg.sender, PunishReason.WrongProofHash, penaltyWrongProof);
            return false;
        }
        if (!_checkProof(initNumBatch, finalNewBatch, s.verified, newStateRoot, roots, proof)) {
            commits[initNumBatch][msg.sender] = c | F_REVEALED | F_PUNISHED;
            _punish(initNumBatch, msg.sender, PunishReason.InvalidProof, penaltyWrongProof);
            return false;
        }
        _accept(initNumBatch, finalNewBatch, newStateRoot, s.windowId, !s.verified);
        return true;
    }

    /// @notice After the window of a verified sequence ended, pays msg.sender's share of the
    ///         sequence reward (reward * weight / totalWeight) through MinerDeposit.reward.
    function claimReward(uint64 initNumBatch) external returns (uint256 amount) {
        uint256 c = commits[initNumBatch][msg.sender];
        if (c & F_VALID == 0) revert NoValidProof(initNumBatch, msg.sender);
        if (c & F_REWARDED != 0) revert AlreadyRewarded(initNumBatch, msg.sender);
        Sequence memory s = sequences[initNumBatch];
        uint256 end = uint256(s.openBlock) + s.t1 + s.t2;
        if (block.number < end) revert WindowNotEnded(initNumBatch, end);
        commits[initNumBatch][msg.sender] = c | F_REWARDED;
        Reward memory rw = rewards[initNumBatch];
        amount = uint256(rw.amount) * (c >> 64) / rw.totalWeight;
        emit Rewarded(initNumBatch, msg.sender, amount);
        if (amount != 0) minerDeposit.reward(msg.sender, amount);
    }

    /// @notice Anyone: penalise `miner`, who committed to a window of this sequence that has ended
    ///         without a valid proof from them.
    function punishNoProof(uint64 initNumBatch, address miner) external {
        uint256 c = commits[initNumBatch][miner];
        if (c == 0 || c & (F_VALID | F_PUNISHED) != 0) revert NotPunishable(initNumBatch, miner);
        Sequence memory s = sequences[initNumBatch];
        if (_windowOf(c) == s.windowId) {
            uint256 end = uint256(s.openBlock) + s.t1 + s.t2;
            if (block.number < end) revert WindowNotEnded(initNumBatch, end);
        }
        commits[initNumBatch][miner] = c | F_PUNISHED;
        _punish(initNumBatch, miner, PunishReason.NoProof, penaltyNoProof);
    }

    /// @notice Anyone: reset a window that ended without a valid proof, so that commits open again
    ///         (the next commit opens the new window). `submitProofHash` does this by itself too.
    function resetWindow(uint64 initNumBatch) external {
        Sequence storage sp = sequences[initNumBatch];
        Sequence memory s = sp;
        if (s.finalNewBatch == 0 || s.verified || s.openBlock == 0 || block.number < uint256(s.openBlock) + s.t1 + s.t2)
        {
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

    /// @notice Commit phase length (blocks) for windows opened from now on.
    function t1() external view returns (uint32) {
        return hot.t1;
    }

    /// @notice Reveal phase length (blocks) for windows opened from now on.
    function t2() external view returns (uint32) {
        return hot.t2;
    }

    function minDeposit() external view returns (uint128) {
        return hot.minDeposit;
    }

    /// @notice sha256 of the bytes of batch `numBatch` (zero if not posted).
    function batchHash(uint64 numBatch) external view returns (bytes32) {
        return batchHashes[numBatch];
    }

    /// @notice The sequence starting at `initNumBatch` (finalNewBatch = 0: none) and its current window.
    function sequence(uint64 initNumBatch)
        external
        view
        returns (uint64 finalNewBatch, uint64 openBlock, uint32 windowId, uint32 windowT1, uint32 windowT2, bool verified)
    {
        Sequence memory s = sequences[initNumBatch];
        return (s.finalNewBatch, s.openBlock, s.windowId, s.t1, s.t2, s.verified);
    }

    /// @notice Phase of the current window of a sequence and its boundaries (exclusive ends; zero
    ///         when the window is not open).
    function windowStatus(uint64 initNumBatch)
        external
        view
        returns (WindowPhase phase, uint32 windowId, uint64 openBlock, uint64 commitEnd, uint64 revealEnd)
    {
        Sequence memory s = sequences[initNumBatch];
        if (s.finalNewBatch == 0) return (WindowPhase.None, 0, 0, 0, 0);
        windowId = s.windowId;
        if (s.openBlock == 0) return (WindowPhase.NotOpen, windowId, 0, 0, 0);
        openBlock = s.openBlock;
        commitEnd = openBlock + s.t1;
        revealEnd = commitEnd + s.t2;
        if (block.number < commitEnd) phase = WindowPhase.Commit;
        else if (block.number < revealEnd) phase = WindowPhase.Reveal;
        else phase = WindowPhase.Ended;
    }

    /// @notice The commit of `miner` for a sequence (its latest window). `proofHashPrefix` is the
    ///         committed top 24 bytes of the proof hash until a valid reveal; `weight` is the reward
    ///         weight after a valid reveal. windowId = 0: no commit.
    function commitOf(uint64 initNumBatch, address miner) external view returns (CommitInfo memory info) {
        uint256 c = commits[initNumBatch][miner];
        info.valid = c & F_VALID != 0;
        if (info.valid) info.weight = c >> 64;
        else info.proofHashPrefix = bytes24(bytes32(c));
        info.windowId = _windowOf(c);
        info.revealed = c & F_REVEALED != 0;
        info.punished = c & F_PUNISHED != 0;
        info.rewarded = c & F_REWARDED != 0;
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

    /// @notice Roots of a verified sequence (zeros before it is verified), its reward (fixed when it
    ///         was posted) and the sum of the valid revealers' weights.
    function verification(uint64 initNumBatch)
        external
        view
        returns (bytes32 oldRoot, bytes32 newRoot, uint128 reward, uint128 totalWeight)
    {
        Sequence memory s = sequences[initNumBatch];
        if (s.verified) {
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
        return uint32(c >> 32);
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

    /// Records a valid reveal: the miner's reward weight (deposit at reveal time, at least 1) and,
    /// for the first valid proof, the verified state.
    function _accept(uint64 initNumBatch, uint64 finalNewBatch, bytes32 newStateRoot, uint32 windowId, bool first)
        private
    {
        uint256 weight = minerDeposit.depositOf(msg.sender);
        if (weight == 0) weight = 1;
        if (weight > type(uint128).max) weight = type(uint128).max;
        commits[initNumBatch][msg.sender] = (weight << 64) | (uint256(windowId) << 32) | F_REVEALED | F_VALID;
        if (first) {
            sequences[initNumBatch].verified = true;
            rootAfter[finalNewBatch] = newStateRoot;
            hot.lastVerifiedBatch = finalNewBatch;
            emit SequenceVerified(initNumBatch, finalNewBatch, newStateRoot, msg.sender);
        }
        rewards[initNumBatch].totalWeight += uint128(weight);
        emit ProofAccepted(initNumBatch, msg.sender, windowId, weight, first);
    }

    function _punish(uint64 initNumBatch, address miner, PunishReason reason, uint256 amount) private {
        uint256 taken;
        if (amount != 0) taken = minerDeposit.punish(miner, amount);
        emit Punished(initNumBatch, miner, reason, amount, taken);
    }
}
