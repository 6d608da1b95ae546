// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test, Vm} from "./Test.sol";
import {MinerDeposit} from "../../src/MinerDeposit.sol";
import {ZkPowRollup} from "../../src/ZkPowRollup.sol";
import {Groth16BatchVerifier} from "../../src/Groth16BatchVerifier.sol";

/// Gas benchmark harness: commit + reveal of one n-batch sequence vs n one-batch sequences, and
/// verifier-only gas, with real Groth16 proofs (fixture or trapdoor). Numbers are whole-transaction
/// gas (21000 + calldata + execution) when forge runs with --isolate (make gas-bench); without it
/// they are execution gas inside one test transaction and only indicative.
abstract contract RevealBench is Test {
    MinerDeposit internal dep;
    Groth16BatchVerifier internal verifier;
    ZkPowRollup internal rollup;
    address internal sequencer = address(0x5E0);
    address internal miner;
    bytes32 internal genesis;

    /// Bytes of batch `num` (batches are numbered from 1).
    function _batchBytes(uint64 num) internal view virtual returns (bytes memory);

    /// The miner's proof of [init, fin] from the current state, with the roots.
    function _proofFor(uint64 init, uint64 fin)
        internal
        view
        virtual
        returns (bytes memory proof, bytes32[] memory roots, bytes32 newRoot);

    function _postSequence(uint256 n) internal returns (uint64 init, uint64 fin) {
        uint64 first = rollup.lastBatch() + 1;
        bytes[] memory batches = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            batches[i] = _batchBytes(first + uint64(i));
        }
        vm.prank(sequencer);
        (init, fin) = rollup.sequenceBatches(batches);
    }

    function _commitAndReveal(uint64 init, uint64 fin) internal returns (uint256 commitGas, uint256 revealGas) {
        (bytes memory proof, bytes32[] memory roots, bytes32 newRoot) = _proofFor(init, fin);
        bytes32 h = keccak256(abi.encodePacked(keccak256(proof), miner));
        vm.prank(miner);
        rollup.submitProofHash(init, fin, h);
        commitGas = vm.lastCallGas().gasTotalUsed;
        vm.roll(block.number + rollup.t1());
        vm.prank(miner);
        bool ok = rollup.verifyBatches(init, fin, newRoot, roots, proof);
        revealGas = vm.lastCallGas().gasTotalUsed;
        assertTrue(ok, "benchmark proof rejected");
    }

    function _verifyOnlyGas(uint64 init, uint64 fin) internal returns (uint256) {
        (bytes memory proof, bytes32[] memory roots, bytes32 newRoot) = _proofFor(init, fin);
        uint256 n = fin - init + 1;
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
        // a non-static call, so that --isolate runs it as a transaction of its own
        (bool ok, bytes memory ret) = address(verifier).call(abi.encodeCall(verifier.verify, (x, proof)));
        uint256 g = vm.lastCallGas().gasTotalUsed;
        assertTrue(ok && abi.decode(ret, (bool)), "verify");
        return g;
    }

    /// Ceiling of the opening commit of the table (the first bond ever locked in MinerDeposit, the
    /// most expensive case): a regression guard, see docs/CONTRACTS.md, "Gas design".
    uint256 internal constant COMMIT_GAS_CEILING = 92_000;

    struct Row {
        uint256 n;
        uint256 commitGas;
        uint256 revealGas;
        uint256 verifyGas;
        uint256 sepCommitGas;
        uint256 sepRevealGas;
        uint256 sepVerifyGas;
    }

    function _bench(uint256 n) internal returns (Row memory row) {
        row.n = n;
        uint256 snap = vm.snapshotState();
        (uint64 init, uint64 fin) = _postSequence(n);
        row.verifyGas = _verifyOnlyGas(init, fin);
        (row.commitGas, row.revealGas) = _commitAndReveal(init, fin);
        vm.revertToState(snap);

        for (uint256 i; i < n; ++i) {
            _postSequence(1);
        }
        for (uint64 b = 1; b <= n; ++b) {
            row.sepVerifyGas += _verifyOnlyGas(b, b);
            (uint256 c, uint256 r) = _commitAndReveal(b, b);
            row.sepCommitGas += c;
            row.sepRevealGas += r;
        }
        vm.revertToState(snap);
    }

    function _report(string memory title, uint256[] memory ns) internal {
        log(title);
        log("| n | submitProofHash | verifyBatches | marginal/batch | marginal vs n=1 | n x (commit+reveal) separately | saving | verify() n proofs | n x verify() |");
        log("|---|---|---|---|---|---|---|---|---|");
        Row memory one;
        for (uint256 k; k < ns.length; ++k) {
            Row memory row = _bench(ns[k]);
            if (row.n == 1) one = row;
            log(_formatRow(row, one));
            assertLt(row.commitGas, COMMIT_GAS_CEILING, "commit gas ceiling");
        }
    }

    function _formatRow(Row memory row, Row memory one) internal pure returns (string memory) {
        string memory marginal = "-";
        string memory ratio = "-";
        if (row.n > 1 && one.n == 1) {
            uint256 m = (row.revealGas - one.revealGas) / (row.n - 1);
            marginal = vm.toString(m);
            ratio = string.concat(vm.toString(m * 100 / one.revealGas), "%");
        }
        uint256 combined = row.commitGas + row.revealGas;
        uint256 separate = row.sepCommitGas + row.sepRevealGas;
        string memory saving =
            separate > combined ? string.concat(vm.toString((separate - combined) * 100 / separate), "%") : "0%";
        string memory head = string.concat(
            "| ", vm.toString(row.n), " | ", vm.toString(row.commitGas), " | ", vm.toString(row.revealGas), " | "
        );
        string memory mid = string.concat(marginal, " | ", ratio, " | ", vm.toString(separate), " | ", saving, " | ");
        return string.concat(head, mid, vm.toString(row.verifyGas), " | ", vm.toString(row.sepVerifyGas), " |");
    }
}
