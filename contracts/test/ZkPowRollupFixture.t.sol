// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RevealBench} from "./utils/RevealBench.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {Groth16BatchVerifier} from "../src/Groth16BatchVerifier.sol";
import {IMinerDeposit} from "../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../src/interfaces/IGroth16BatchVerifier.sol";

/// Real circuit proofs from test/fixtures/proofs.json, written by `zkpow fixtures`:
///   {"shape":{"k":K,"d":D}, "vk":"0x<1920 bytes>", "chain_id":31337, "rollup":"0x<address>",
///    "miner":"0x<address>", "genesis_root":"0x..", "batch_size":N, "batches":["0x..", x16],
///    "roots":["0x<root after batch i>", x16], "proofs":["0x<512 bytes>", x16],
///    "inputs":[["0x..", x7], x16]}
/// The rollup is deployed at the fixture's address (the `domain` input depends on it). Every test
/// is skipped while the file is missing. The same tests run on test/fixtures/trapdoor-proofs.json
/// (same format, trapdoor proofs; see script/WriteTrapdoorFixture.s.sol), which is always there.
abstract contract FixtureTests is RevealBench {
    uint256 internal constant NUM_BATCHES = 16;

    string internal json;
    bool internal haveFixture;
    bytes[] internal batches;
    bytes32[] internal rootsAfter;
    bytes[] internal proofs;
    bytes internal vk;
    uint256 internal batchSize;

    /// File name under test/fixtures.
    function _fixtureFile() internal pure virtual returns (string memory);

    function setUp() public {
        string memory path = string.concat(vm.projectRoot(), "/test/fixtures/", _fixtureFile());
        haveFixture = vm.exists(path);
        if (!haveFixture) return;
        json = vm.readFile(path);
        vm.chainId(vm.parseJsonUint(json, ".chain_id"));
        vm.roll(100);

        vk = vm.parseJsonBytes(json, ".vk");
        miner = vm.parseJsonAddress(json, ".miner");
        genesis = vm.parseJsonBytes32(json, ".genesis_root");
        batchSize = vm.parseJsonUint(json, ".batch_size");
        bytes[] memory b = vm.parseJsonBytesArray(json, ".batches");
        bytes32[] memory r = vm.parseJsonBytes32Array(json, ".roots");
        bytes[] memory p = vm.parseJsonBytesArray(json, ".proofs");
        for (uint256 i; i < b.length; ++i) {
            batches.push(b[i]);
            rootsAfter.push(r[i]);
            proofs.push(p[i]);
        }

        verifier = new Groth16BatchVerifier(vk);
        dep = new MinerDeposit(address(this), 100);
        address at = vm.parseJsonAddress(json, ".rollup");
        deployCodeTo(
            "ZkPowRollup.sol:ZkPowRollup",
            abi.encode(
                IMinerDeposit(address(dep)),
                IGroth16BatchVerifier(address(verifier)),
                sequencer,
                genesis,
                batchSize,
                uint32(0),
                uint32(0),
                uint128(1 ether),
                uint128(0.1 ether),
                uint128(0.5 ether),
                uint128(0.3 ether)
            ),
            at
        );
        rollup = ZkPowRollup(at);
        dep.registerRollup(at);
        vm.deal(address(this), 100 ether);
        dep.fundRewards{value: 10 ether}(address(rollup));
        vm.deal(miner, 10 ether);
        vm.prank(miner);
        dep.deposit{value: 2 ether}();
    }

    modifier needsFixture() {
        if (!haveFixture) {
            vm.skip(true);
            return;
        }
        _;
    }

    // ------------------------------------------------------------------ RevealBench hooks

    function _batchBytes(uint64 num) internal view override returns (bytes memory) {
        return batches[num - 1];
    }

    function _proofFor(uint64 init, uint64 fin)
        internal
        view
        override
        returns (bytes memory proof, bytes32[] memory roots, bytes32 newRoot)
    {
        uint256 n = fin - init + 1;
        roots = new bytes32[](n - 1);
        for (uint256 i; i < n; ++i) {
            proof = bytes.concat(proof, proofs[init - 1 + i]);
            if (i + 1 < n) roots[i] = rootsAfter[init - 1 + i];
        }
        newRoot = rootsAfter[fin - 1];
    }

    function _inputs(uint256 i) internal view returns (uint256[] memory) {
        return vm.parseJsonUintArray(json, string.concat(".inputs[", vm.toString(i), "]"));
    }

    // ------------------------------------------------------------------ tests

    function test_fixture_shape() public needsFixture {
        assertEq(batches.length, NUM_BATCHES, "16 batches");
        assertEq(proofs.length, NUM_BATCHES, "16 proofs");
        assertEq(rootsAfter.length, NUM_BATCHES, "16 roots");
        assertEq(vk.length, 1920, "vk bytes");
        assertEq(verifier.vkHash(), keccak256(vk), "vkHash");
        assertEq(batchSize % 20, 0, "batch size = 20 K");
        assertEq(batchSize / 20, vm.parseJsonUint(json, ".shape.k"), "K");
        for (uint256 i; i < NUM_BATCHES; ++i) {
            assertEq(batches[i].length, batchSize, "batch length");
            assertEq(proofs[i].length, 512, "proof length");
        }
    }

    /// The contract builds exactly the inputs the prover proved.
    function test_fixture_publicInputsMatch() public needsFixture {
        _postSequence(NUM_BATCHES);
        bytes32 prev = genesis;
        for (uint256 i; i < NUM_BATCHES; ++i) {
            uint256[] memory expected = _inputs(i);
            uint256[7] memory x = rollup.publicInputs(uint64(i + 1), prev, rootsAfter[i], miner);
            assertEq(expected.length, 7, "7 inputs");
            for (uint256 j; j < 7; ++j) {
                assertEq(x[j], expected[j], string.concat("input ", vm.toString(j), " of batch ", vm.toString(i + 1)));
            }
            prev = rootsAfter[i];
        }
        assertEq(rollup.domain(), _inputs(0)[0], "domain");
    }

    function test_fixture_verifierAcceptsEachAndAll() public needsFixture {
        uint256[] memory all = new uint256[](7 * NUM_BATCHES);
        bytes memory allProofs;
        for (uint256 i; i < NUM_BATCHES; ++i) {
            uint256[] memory x = _inputs(i);
            assertTrue(verifier.verify(x, proofs[i]), string.concat("proof ", vm.toString(i + 1)));
            for (uint256 j; j < 7; ++j) {
                all[7 * i + j] = x[j];
            }
            allProofs = bytes.concat(allProofs, proofs[i]);
        }
        assertTrue(verifier.verify(all, allProofs), "all 16 at once");
    }

    function test_fixture_verifierRejectsTampering() public needsFixture {
        uint256[] memory x = _inputs(0);
        bytes memory p = proofs[0];
        x[6] = uint160(address(0xBAD)); // another miner
        assertFalse(verifier.verify(x, p), "other miner");
        x = _inputs(0);
        x[1] = 2; // another batch number
        assertFalse(verifier.verify(x, p), "other batch number");
        x = _inputs(0);
        x[3] = x[3] ^ 1; // another new root
        assertFalse(verifier.verify(x, p), "other new root");
        x = _inputs(1);
        assertFalse(verifier.verify(x, p), "proof 1 with inputs 2");
        // a pair of proofs in the wrong order
        uint256[] memory two = new uint256[](14);
        uint256[] memory a = _inputs(0);
        uint256[] memory b = _inputs(1);
        for (uint256 j; j < 7; ++j) {
            two[j] = a[j];
            two[7 + j] = b[j];
        }
        assertTrue(verifier.verify(two, bytes.concat(proofs[0], proofs[1])), "pair");
        assertFalse(verifier.verify(two, bytes.concat(proofs[1], proofs[0])), "pair swapped");
    }

    /// The whole chain in sequences of 1, 2, 4, 8 and 1 batches.
    function test_fixture_rollupVerifiesAllSequences() public needsFixture {
        uint256[5] memory sizes = [uint256(1), 2, 4, 8, 1];
        for (uint256 k; k < sizes.length; ++k) {
            (uint64 init, uint64 fin) = _postSequence(sizes[k]);
            _commitAndReveal(init, fin);
            assertEq(rollup.lastVerifiedBatch(), fin, "verified");
            assertEq(rollup.stateRoot(), rootsAfter[fin - 1], "state root");
        }
        assertEq(rollup.lastVerifiedBatch(), NUM_BATCHES, "all 16");
    }

    function test_fixture_rollupVerifiesSixteenAtOnce() public needsFixture {
        (uint64 init, uint64 fin) = _postSequence(NUM_BATCHES);
        _commitAndReveal(init, fin);
        assertEq(rollup.stateRoot(), rootsAfter[NUM_BATCHES - 1], "state root");
    }

    /// A proof copied by another miner is invalid for them (the miner is a public input), and the
    /// copier is penalised.
    function test_fixture_copiedProofPenalised() public needsFixture {
        address copier = address(0xC0FFEE);
        vm.deal(copier, 10 ether);
        vm.prank(copier);
        dep.deposit{value: 2 ether}();
        (uint64 init, uint64 fin) = _postSequence(2);
        (bytes memory proof, bytes32[] memory roots, bytes32 newRoot) = _proofFor(init, fin);
        vm.prank(copier);
        rollup.submitProofHash(init, fin, keccak256(abi.encodePacked(keccak256(proof), copier)));
        vm.roll(block.number + rollup.t1());
        vm.prank(copier);
        assertFalse(rollup.verifyBatches(init, fin, newRoot, roots, proof), "copy rejected");
        assertEq(dep.depositOf(copier), 1.5 ether, "copier penalised");
        assertEq(dep.lockedOf(copier), 0, "bond settled");
        assertEq(rollup.lastVerifiedBatch(), 0, "nothing verified");
    }

    function test_gasBenchmark_fixture() public needsFixture {
        uint256[] memory ns = new uint256[](5);
        ns[0] = 1;
        ns[1] = 2;
        ns[2] = 4;
        ns[3] = 8;
        ns[4] = 16;
        _report(string.concat("Gas, proofs from test/fixtures/", _fixtureFile(), ":"), ns);
    }
}

/// Circuit proofs written by `zkpow fixtures` (skipped while the file is missing).
contract ZkPowRollupFixtureTest is FixtureTests {
    function _fixtureFile() internal pure override returns (string memory) {
        return "proofs.json";
    }
}

/// The same tests on trapdoor proofs in the fixture format.
contract TrapdoorFixtureTest is FixtureTests {
    function _fixtureFile() internal pure override returns (string memory) {
        return "trapdoor-proofs.json";
    }
}
