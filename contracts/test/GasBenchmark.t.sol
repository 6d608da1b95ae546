// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RevealBench} from "./utils/RevealBench.sol";
import {TrapdoorGroth16} from "./utils/Bls.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {Groth16BatchVerifier} from "../src/Groth16BatchVerifier.sol";
import {IMinerDeposit} from "../src/interfaces/IMinerDeposit.sol";
import {IGroth16BatchVerifier} from "../src/interfaces/IGroth16BatchVerifier.sol";

/// Gas benchmark with trapdoor Groth16 proofs (valid for the verification equation, same gas as
/// circuit proofs: the precompiles' prices do not depend on the values). The same table from the
/// circuit's proofs is in ZkPowRollupFixtureTest.test_gasBenchmark_fixture.
/// Run with `make -f mk/evm.mk gas-bench` (forge test --isolate) for whole-transaction numbers.
contract GasBenchmarkTest is RevealBench {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 internal constant BATCH_SIZE = 320; // K = 16 transfers

    TrapdoorGroth16 internal td;

    function setUp() public {
        vm.roll(100);
        miner = address(0x3141592653589793238462643383279502884197);
        genesis = bytes32(uint256(keccak256("genesis")) % R);
        td = new TrapdoorGroth16(7);
        verifier = new Groth16BatchVerifier(td.vk());
        dep = new MinerDeposit(address(this), 100);
        rollup = new ZkPowRollup(
            IMinerDeposit(address(dep)),
            IGroth16BatchVerifier(address(verifier)),
            sequencer,
            genesis,
            BATCH_SIZE,
            0,
            0,
            1 ether,
            0.1 ether,
            0.5 ether,
            0.3 ether
        );
        dep.registerRollup(address(rollup));
        vm.deal(address(this), 100 ether);
        dep.fundRewards{value: 10 ether}(address(rollup));
        vm.deal(miner, 10 ether);
        vm.prank(miner);
        dep.deposit{value: 2 ether}();
    }

    function _batchBytes(uint64 num) internal pure override returns (bytes memory b) {
        b = new bytes(BATCH_SIZE);
        for (uint256 k; k < BATCH_SIZE; k += 32) {
            bytes32 w = keccak256(abi.encode(num, k));
            for (uint256 j; j < 32; ++j) {
                b[k + j] = w[j];
            }
        }
    }

    function _root(uint64 num) internal pure returns (bytes32) {
        return bytes32(uint256(keccak256(abi.encode("root", num))) % R);
    }

    function _proofFor(uint64 init, uint64 fin)
        internal
        view
        override
        returns (bytes memory proof, bytes32[] memory roots, bytes32 newRoot)
    {
        uint256 n = fin - init + 1;
        roots = new bytes32[](n - 1);
        for (uint256 i; i + 1 < n; ++i) {
            roots[i] = _root(init + uint64(i));
        }
        newRoot = _root(fin);
        uint256[] memory x = new uint256[](7 * n);
        bytes32 prev = rollup.stateRoot();
        for (uint256 i; i < n; ++i) {
            bytes32 next = i + 1 < n ? roots[i] : newRoot;
            uint256[7] memory one = rollup.publicInputs(init + uint64(i), prev, next, miner);
            for (uint256 j; j < 7; ++j) {
                x[7 * i + j] = one[j];
            }
            prev = next;
        }
        proof = td.proveAll(x, uint256(init) << 64 | fin);
    }

    /// Whatever gas limit a miner sets, a valid reveal either reverts (and can be sent again) or is
    /// accepted: it is never penalised for lack of gas.
    function testFuzz_revealGasLimit_neverWrongPenalty(uint256 gasLimit, uint8 nRaw) public {
        uint256 n = bound(nRaw, 1, 4);
        (uint64 init, uint64 fin) = _postSequence(n);
        (bytes memory proof, bytes32[] memory roots, bytes32 newRoot) = _proofFor(init, fin);
        vm.prank(miner);
        rollup.submitProofHash(init, fin, keccak256(abi.encodePacked(keccak256(proof), miner)));
        vm.roll(block.number + rollup.t1());
        gasLimit = bound(gasLimit, 30000, 900000);
        uint256 before = dep.depositOf(miner);
        vm.prank(miner);
        (bool ok, bytes memory ret) = address(rollup).call{gas: gasLimit}(
            abi.encodeCall(ZkPowRollup.verifyBatches, (init, fin, newRoot, roots, proof))
        );
        if (ok) {
            assertTrue(abi.decode(ret, (bool)), "valid reveal judged invalid");
            assertEq(rollup.lastVerifiedBatch(), fin, "verified");
        } else {
            assertFalse(rollup.commitOf(init, miner).revealed, "nothing recorded on revert");
            assertEq(dep.lockedOf(miner), rollup.bond(), "bond still locked: the miner can try again");
        }
        assertEq(dep.depositOf(miner), before, "never penalised");
    }

    /// Whole-transaction gas of single calls (with --isolate: `make -f mk/evm.mk gas-bench`).
    function test_gasBenchmark_calls() public {
        address other = address(0x0123456789012345678901234567890123456789);
        vm.deal(other, 10 ether);
        vm.prank(other);
        dep.deposit{value: 2 ether}();
        uint256[11] memory g;
        _postSequence(1);
        g[0] = vm.lastCallGas().gasTotalUsed;
        _postSequence(1);
        _postSequence(1);
        (bytes memory proof, bytes32[] memory roots, bytes32 newRoot) = _proofFor(1, 1);
        vm.prank(miner);
        rollup.submitProofHash(1, 1, keccak256(abi.encodePacked(keccak256(proof), miner)));
        g[1] = vm.lastCallGas().gasTotalUsed;
        vm.prank(other);
        rollup.submitProofHash(1, 1, keccak256("junk"));
        g[4] = vm.lastCallGas().gasTotalUsed;
        vm.prank(other);
        rollup.submitProofHash(2, 2, keccak256("junk 2"));
        g[2] = vm.lastCallGas().gasTotalUsed;
        vm.prank(other);
        rollup.submitProofHash(3, 3, keccak256("junk 3"));
        g[3] = vm.lastCallGas().gasTotalUsed;
        vm.roll(block.number + rollup.t1());
        vm.prank(miner);
        assertTrue(rollup.verifyBatches(1, 1, newRoot, roots, proof), "valid");
        g[6] = vm.lastCallGas().gasTotalUsed;
        vm.prank(other);
        assertFalse(rollup.verifyBatches(1, 1, newRoot, roots, proof), "wrong hash");
        g[7] = vm.lastCallGas().gasTotalUsed;
        vm.roll(block.number + rollup.t2());
        vm.prank(miner);
        rollup.claimReward(1);
        g[8] = vm.lastCallGas().gasTotalUsed;
        rollup.settleNoProof(2, other);
        g[9] = vm.lastCallGas().gasTotalUsed;
        rollup.resetWindow(2);
        vm.prank(other);
        rollup.submitProofHash(2, 2, keccak256("junk 4"));
        g[5] = vm.lastCallGas().gasTotalUsed;
        vm.prank(miner);
        dep.claimRewards();
        g[10] = vm.lastCallGas().gasTotalUsed;
        _reportCalls(g);
    }

    function _reportCalls(uint256[11] memory g) internal view {
        string[11] memory what = [
            "sequenceBatches, 1 batch of 320 bytes",
            "submitProofHash, opening a window, first bond locked in MinerDeposit",
            "submitProofHash, opening a window, other bonds locked",
            "submitProofHash, opening a window, pipelined (predecessor unverified)",
            "submitProofHash, joining an open window",
            "submitProofHash, opening a window again after a reset, same miner (commit slot reused)",
            "verifyBatches, 1 batch, valid, first",
            "verifyBatches, wrong proof hash (penalty)",
            "claimReward",
            "settleNoProof by a third party",
            "MinerDeposit.claimRewards"
        ];
        log("Gas of single calls (whole transactions):");
        log("| call | gas |");
        log("|---|---|");
        for (uint256 i; i < 11; ++i) {
            log(string.concat("| ", what[i], " | ", vm.toString(g[i]), " |"));
        }
    }

    function test_gasBenchmark_trapdoor() public {
        uint256[] memory ns = new uint256[](5);
        ns[0] = 1;
        ns[1] = 2;
        ns[2] = 4;
        ns[3] = 8;
        ns[4] = 16;
        _report("Gas, trapdoor proofs (same gas as circuit proofs):", ns);
    }
}
