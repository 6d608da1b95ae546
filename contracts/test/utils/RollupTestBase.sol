// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {StubVerifierForRuleTests} from "./StubVerifierForRuleTests.sol";
import {MinerDeposit} from "../../src/MinerDeposit.sol";
import {ZkPowRollup} from "../../src/ZkPowRollup.sol";
import {IMinerDeposit} from "../../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../../src/interfaces/IGroth16BatchVerifier.sol";

/// Shared setup of the rollup rule tests: MinerDeposit + ZkPowRollup + the test-only stub verifier,
/// and helpers that compute the expected public inputs independently of the contract.
abstract contract RollupTestBase is Test {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 internal constant BATCH_SIZE = 40; // K = 2 transfers of 20 bytes
    uint64 internal constant UNBONDING = 100;
    uint32 internal constant T1 = 20;
    uint32 internal constant T2 = 32;
    uint128 internal constant MIN_DEPOSIT = 1 ether;
    uint128 internal constant REWARD = 0.1 ether;
    uint128 internal constant PENALTY_WRONG = 0.5 ether;
    uint128 internal constant PENALTY_NO_PROOF = 0.3 ether;
    bytes32 internal constant GENESIS = bytes32(uint256(0x1234));

    address internal sequencer = address(0x5E0);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);

    MinerDeposit internal dep;
    StubVerifierForRuleTests internal stub;
    ZkPowRollup internal rollup;

    /// Batch bytes the test posted, by batch number.
    mapping(uint64 => bytes) internal posted;

    function setUp() public virtual {
        vm.roll(1000);
        dep = new MinerDeposit(address(this), UNBONDING);
        stub = new StubVerifierForRuleTests();
        rollup = new ZkPowRollup(
            IMinerDeposit(address(dep)),
            IGroth16BatchVerifier(address(stub)),
            sequencer,
            GENESIS,
            BATCH_SIZE,
            0, // default T1
            0, // default T2
            MIN_DEPOSIT,
            REWARD,
            PENALTY_WRONG,
            PENALTY_NO_PROOF
        );
        dep.registerRollup(address(rollup));
        vm.deal(address(this), 1000 ether);
        dep.fundRewards{value: 10 ether}();
        _fundMiner(alice, 2 ether);
        _fundMiner(bob, 6 ether);
        _fundMiner(carol, 1 ether);
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
        uint64 first = rollup.lastBatch() + 1;
        bytes[] memory batches = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            batches[i] = _batch(first + uint64(i));
            posted[first + uint64(i)] = batches[i];
        }
        vm.prank(sequencer);
        (init, fin) = rollup.sequenceBatches(batches);
    }

    // ------------------------------------------------------------------ proofs (stub)

    /// Deterministic state root < r after batch `num`.
    function _root(uint64 num) internal pure returns (bytes32) {
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

    function _domain() internal view returns (uint256) {
        return uint256(keccak256(abi.encodePacked(block.chainid, address(rollup)))) >> 8;
    }

    /// The inputs the rollup must build, computed from the posted bytes.
    function _expectedInputs(uint64 init, uint64 fin, bytes32 oldRoot, bytes32[] memory roots, bytes32 newRoot, address miner)
        internal
        view
        returns (uint256[] memory x)
    {
        uint256 n = fin - init + 1;
        x = new uint256[](7 * n);
        bytes32 prev = oldRoot;
        for (uint256 i; i < n; ++i) {
            bytes32 next = i + 1 < n ? roots[i] : newRoot;
            uint256 h = uint256(sha256(posted[init + uint64(i)]));
            x[7 * i] = _domain();
            x[7 * i + 1] = init + i;
            x[7 * i + 2] = uint256(prev);
            x[7 * i + 3] = uint256(next);
            x[7 * i + 4] = h >> 128;
            x[7 * i + 5] = h & type(uint128).max;
            x[7 * i + 6] = uint160(miner);
            prev = next;
        }
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

    /// A proof the stub accepts for `miner` revealing [init, fin] from oldRoot.
    function _proof(uint64 init, uint64 fin, bytes32 oldRoot, address miner) internal view returns (bytes memory) {
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        return _stubProof(_expectedInputs(init, fin, oldRoot, roots, newRoot, miner));
    }

    function _hash(bytes memory proof, address miner) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(keccak256(proof), miner));
    }

    function _commit(address miner, uint64 init, uint64 fin, bytes memory proof) internal {
        vm.prank(miner);
        rollup.submitProofHash(init, fin, _hash(proof, miner));
    }

    function _reveal(address miner, uint64 init, uint64 fin, bytes memory proof) internal returns (bool) {
        (bytes32[] memory roots, bytes32 newRoot) = _roots(init, fin);
        vm.prank(miner);
        return rollup.verifyBatches(init, fin, newRoot, roots, proof);
    }

    function _openBlock(uint64 init) internal view returns (uint64 openBlock) {
        (, openBlock,,,,) = rollup.sequence(init);
    }

    function _rollToReveal(uint64 init) internal {
        (,, uint32 wid, uint32 t1, uint32 t2,) = rollup.sequence(init);
        wid;
        t2;
        vm.roll(uint256(_openBlock(init)) + t1);
    }

    function _rollToEnd(uint64 init) internal {
        (,,, uint32 t1, uint32 t2,) = rollup.sequence(init);
        vm.roll(uint256(_openBlock(init)) + t1 + t2);
    }
}
