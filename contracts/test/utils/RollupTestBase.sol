// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {DepositBooks} from "./DepositBooks.sol";
import {StubVerifierForRuleTests} from "./StubVerifierForRuleTests.sol";
import {MinerDeposit} from "../../src/MinerDeposit.sol";
import {ZkPowRollup} from "../../src/ZkPowRollup.sol";
import {IMinerDeposit} from "../../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../../src/interfaces/IGroth16BatchVerifier.sol";

/// Shared setup of the rollup rule tests: MinerDeposit + ZkPowRollup + the test-only stub verifier,
/// and helpers that compute the expected public inputs independently of the contract.
///
/// State roots are deterministic: the root after batch b is `_root(b)` (GENESIS after batch 0), so
/// a proof of any posted sequence can be built before its predecessor is verified, as a pipelined
/// miner does.
abstract contract RollupTestBase is DepositBooks {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 internal constant BATCH_SIZE = 40; // K = 2 transfers of 20 bytes
    uint64 internal constant UNBONDING = 100;
    uint32 internal constant T1 = 20;
    uint32 internal constant T2 = 32;
    uint128 internal constant MIN_DEPOSIT = 1 ether;
    uint128 internal constant REWARD = 0.1 ether;
    uint128 internal constant PENALTY_WRONG = 0.5 ether;
    uint128 internal constant PENALTY_NO_PROOF = 0.3 ether;
    /// max(PENALTY_WRONG, PENALTY_NO_PROOF): what every commit locks.
    uint128 internal constant BOND = 0.5 ether;
    uint256 internal constant FUNDED = 10 ether;
    bytes32 internal constant GENESIS = bytes32(uint256(0x1234));
    /// What windowStatus/WindowNotEnded report while the predecessor is unverified.
    uint256 internal constant NEVER = type(uint64).max;

    address internal sequencer = address(0x5E0);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);
    address internal dave = address(0xDA5E);

    MinerDeposit internal dep;
    StubVerifierForRuleTests internal stub;
    ZkPowRollup internal rollup;
    uint256 internal deployBlock;

    function setUp() public virtual {
        vm.roll(1000);
        deployBlock = block.number;
        dep = new MinerDeposit(address(this), UNBONDING);
        stub = new StubVerifierForRuleTests();
        rollup = _newRollup(0, 0, MIN_DEPOSIT, REWARD, PENALTY_WRONG, PENALTY_NO_PROOF);
        dep.registerRollup(address(rollup));
        vm.deal(address(this), 1000 ether);
        dep.fundRewards{value: FUNDED}(address(rollup));
        _fundMiner(alice, 2 ether);
        _fundMiner(bob, 6 ether);
        _fundMiner(carol, 1 ether);
    }

    function _newRollup(uint32 t1, uint32 t2, uint128 minDep, uint128 reward, uint128 wrong, uint128 noProof)
        internal
        returns (ZkPowRollup)
    {
        return new ZkPowRollup(
            IMinerDeposit(address(dep)),
            IGroth16BatchVerifier(address(stub)),
            sequencer,
            GENESIS,
            BATCH_SIZE,
            t1,
            t2,
            minDep,
            reward,
            wrong,
            noProof
        );
    }

    function _fundMiner(address m, uint256 amount) internal {
        vm.deal(m, m.balance + amount);
        vm.prank(m);
        dep.deposit{value: amount}();
    }

    // ------------------------------------------------------------------ sequencing

    function _batch(uint64 num) internal pure returns (bytes memory b) {
        b = new bytes(BATCH_SIZE);
        for (uint256 k; k < BATCH_SIZE; ++k) {
            b[k] = bytes1(uint8(uint256(keccak256(abi.encode(num, k)))));
        }
    }

    function _post(uint256 n) internal returns (uint64 init, uint64 fin) {
        return _postOn(rollup, n);
    }

    function _postOn(ZkPowRollup r, uint256 n) internal returns (uint64 init, uint64 fin) {
        uint64 first = r.lastBatch() + 1;
        bytes[] memory batches = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            batches[i] = _batch(first + uint64(i));
        }
        vm.prank(sequencer);
        (init, fin) = r.sequenceBatches(batches);
    }

    // ------------------------------------------------------------------ proofs (stub)

    /// Deterministic state root < r after batch `num` (GENESIS after batch 0).
    function _root(uint64 num) internal pure returns (bytes32) {
        if (num == 0) return GENESIS;
        return bytes32(uint256(keccak256(abi.encode("root", num))) % R);
    }

    /// Intermediate roots (after init .. fin-1) and the new root (after fin).
    function _roots(uint64 init, uint64 fin) internal pure returns (bytes32[] memory roots, bytes32 newRoot) {
        roots = new bytes32[](fin - init);
        for (uint64 b = init; b < fin; ++b) {
            roots[b - init] = _root(b);
        }
        newRoot = _root(fin);
    }

    function _domainOf(ZkPowRollup r) internal view returns (uint256) {
        return uint256(keccak256(abi.encodePacked(block.chainid, address(r)))) >> 8;
    }

    function _domain() internal view returns (uint256) {
        return _domainOf(rollup);
    }

    /// The inputs the rollup `r` must build, computed from the batch bytes.
    function _expectedInputsOn(
        ZkPowRollup r,
        uint64 init,
        uint64 fin,
        bytes32 oldRoot,
        bytes32[] memory roots,
        bytes32 newRoot,
        address miner
    ) internal view returns (uint256[] memory x) {
        uint256 n = fin - init + 1;
        x = new uint256[](7 * n);
        bytes32 prev = oldRoot;
        uint256 dom = _domainOf(r);
        for (uint256 i; i < n; ++i) {
            bytes32 next = i + 1 < n ? roots[i] : newRoot;
            uint256 h = uint256(sha256(_batch(init + uint64(i))));
            x[7 * i] = dom;
            x[7 * i + 1] = init + i;
            x[7 * i + 2] = uint256(prev);
            x[7 * i + 3] = uint256(next);
            x[7 * i + 4] = h >> 128;
            x[7 * i + 5] = h & type(uint128).max;
            x[7 * i + 6] = uint160(miner);
            prev = next;
        }
    }

    function _expectedInputs(uint64 init, uint64 fin, bytes32 oldRoot, bytes32[] memory roots, bytes32 newRoot, address miner)
        internal
        view
        returns (uint256[] memory)
    {
        return _expectedInputsOn(rollup, init, fin, oldRoot, roots, newRoot, miner);
    }

    function _stubProof(uint256[] memory x) internal view returns (bytes memory p) {
        for (uint256 i; i < x.length / 7; ++i) {
            uint256[7] memory one;
            for (uint256 j; j < 7; ++j) {
                one[j] = x[7 * i + j];
            }
            p = bytes.concat(p, stub.proofFor(one));
        }
    }

    /// A proof the stub accepts for `miner` revealing [init, fin] on `r` from oldRoot.
    function _proofOn(ZkPowRollup r, uint64 init, uint64 fin, bytes32 oldRoot, address miner)
        internal
        view
        returns (bytes memory)
    {
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        return _stubProof(_expectedInputsOn(r, init, fin, oldRoot, roots, newRoot, miner));
    }

    function _proof(uint64 init, uint64 fin, bytes32 oldRoot, address miner) internal view returns (bytes memory) {
        return _proofOn(rollup, init, fin, oldRoot, miner);
    }

    /// A valid proof from the deterministic root after init - 1 (known before it is verified).
    function _proof(uint64 init, uint64 fin, address miner) internal view returns (bytes memory) {
        return _proofOn(rollup, init, fin, _root(init - 1), miner);
    }

    function _hash(bytes memory proof, address miner) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(keccak256(proof), miner));
    }

    function _commitOn(ZkPowRollup r, address miner, uint64 init, uint64 fin, bytes memory proof) internal {
        vm.prank(miner);
        r.submitProofHash(init, fin, _hash(proof, miner));
    }

    function _commit(address miner, uint64 init, uint64 fin, bytes memory proof) internal {
        _commitOn(rollup, miner, init, fin, proof);
    }

    function _revealOn(ZkPowRollup r, address miner, uint64 init, uint64 fin, bytes memory proof) internal returns (bool) {
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        vm.prank(miner);
        return r.verifyBatches(init, fin, newRoot, roots, proof);
    }

    function _reveal(address miner, uint64 init, uint64 fin, bytes memory proof) internal returns (bool) {
        return _revealOn(rollup, miner, init, fin, proof);
    }

    // ------------------------------------------------------------------ windows

    function _openBlock(uint64 init) internal view returns (uint64 openBlock) {
        (, openBlock,,,,) = rollup.sequence(init);
    }

    /// (phase, commitEnd, revealStart, revealEnd) of the current window of `init` on `r`.
    function _statusOn(ZkPowRollup r, uint64 init)
        internal
        view
        returns (ZkPowRollup.WindowPhase phase, uint64 commitEnd, uint64 revealStart, uint64 revealEnd)
    {
        (phase,,, commitEnd, revealStart, revealEnd) = r.windowStatus(init);
    }

    function _phase(uint64 init) internal view returns (ZkPowRollup.WindowPhase phase) {
        (phase,,,) = _statusOn(rollup, init);
    }

    function _assertPhase(ZkPowRollup r, uint64 init, ZkPowRollup.WindowPhase expected, string memory m) internal view {
        (ZkPowRollup.WindowPhase phase,,,) = _statusOn(r, init);
        assertEq(uint256(phase), uint256(expected), m);
    }

    /// Rolls to the first block of the reveal phase (the predecessor must be verified).
    function _rollToRevealOn(ZkPowRollup r, uint64 init) internal {
        (,,, uint64 start,) = _statusRaw(r, init);
        require(start != 0, "reveal start unknown: predecessor unverified or window not open");
        if (block.number < start) vm.roll(start);
    }

    function _rollToReveal(uint64 init) internal {
        _rollToRevealOn(rollup, init);
    }

    /// Rolls to the first block after the reveal phase (the predecessor must be verified).
    function _rollToEndOn(ZkPowRollup r, uint64 init) internal {
        (,,,, uint64 end) = _statusRaw(r, init);
        require(end != 0, "window end unknown: predecessor unverified or window not open");
        if (block.number < end) vm.roll(end);
    }

    function _rollToEnd(uint64 init) internal {
        _rollToEndOn(rollup, init);
    }

    function _statusRaw(ZkPowRollup r, uint64 init)
        private
        view
        returns (ZkPowRollup.WindowPhase phase, uint64 openBlock, uint64 commitEnd, uint64 revealStart, uint64 revealEnd)
    {
        (phase,, openBlock, commitEnd, revealStart, revealEnd) = r.windowStatus(init);
    }

    // ------------------------------------------------------------------ deposit books

    /// The identities documented in MinerDeposit.
    function _checkBooks() internal view {
        _checkDepositIdentities(dep);
        address[4] memory ms = [alice, bob, carol, dave];
        uint256 locked;
        for (uint256 i; i < ms.length; ++i) {
            assertLe(dep.lockedOf(ms[i]), dep.depositOf(ms[i]), "locked <= active");
            locked += dep.lockedOf(ms[i]);
        }
        assertLe(locked, dep.totalStaked(), "locked <= staked");
    }

    function _budget(ZkPowRollup r) internal view returns (uint256 free, uint256 reserved) {
        return dep.budgetOf(address(r));
    }
}
