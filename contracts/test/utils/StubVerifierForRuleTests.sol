// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IGroth16BatchVerifier} from "../../src/interfaces/IGroth16BatchVerifier.sol";

/// @notice TEST ONLY. Stands in for Groth16BatchVerifier in the rollup rule tests, which are not
///         about cryptography. A "proof" of batch i is 512 bytes that start with
///         keccak256(abi.encodePacked(its 7 public inputs)): it is valid iff the rollup built
///         exactly the inputs the test expected (domain, batch number, chained roots, sha256 halves,
///         miner). Inputs >= r are rejected like the real verifier does.
contract StubVerifierForRuleTests is IGroth16BatchVerifier {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;

    enum Mode {
        Check, // validity as described above
        Revert, // every call reverts (must count as an invalid proof)
        RevertInsufficientGas // every call reverts with InsufficientGas (must revert the reveal)
    }

    Mode public mode;

    function setMode(Mode m) external {
        mode = m;
    }

    /// The proof the stub accepts for one batch's inputs.
    function proofFor(uint256[7] memory x) public pure returns (bytes memory) {
        return abi.encodePacked(keccak256(abi.encodePacked(x)), new bytes(480));
    }

    function verify(uint256[] calldata inputs, bytes calldata proofs) external view returns (bool) {
        if (mode == Mode.Revert) revert("stub: revert");
        if (mode == Mode.RevertInsufficientGas) revert InsufficientGas(verifyGas(1));
        uint256 n = proofs.length / 512;
        if (n == 0 || proofs.length != n * 512 || inputs.length != 7 * n) return false;
        for (uint256 i; i < n; ++i) {
            for (uint256 j; j < 7; ++j) {
                if (inputs[7 * i + j] >= R) return false;
            }
            if (bytes32(proofs[512 * i:512 * i + 32]) != keccak256(abi.encodePacked(inputs[7 * i:7 * i + 7]))) {
                return false;
            }
        }
        return true;
    }

    function verifyGas(uint256 n) public pure returns (uint256) {
        return 30000 + 10000 * n;
    }

    function vkHash() external pure returns (bytes32) {
        return keccak256("StubVerifierForRuleTests");
    }
}
