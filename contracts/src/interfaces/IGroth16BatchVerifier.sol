// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice Verifier of zkpow batch proofs (Groth16 over BLS12-381), one per circuit shape.
interface IGroth16BatchVerifier {
    /// @notice `verify` was called with less gas than `verifyGas(n)`; nothing about the data is implied.
    error InsufficientGas(uint256 required);

    /// @notice Checks n Groth16 proofs at once.
    /// @param inputs 7*n public inputs, batch i at [7i, 7i+7): domain, batch_num, old_root, new_root,
    ///        data_hash_hi, data_hash_lo, miner.
    /// @param proofs 512*n bytes, proof i = A (G1, 128) || B (G2, 256) || C (G1, 128), EIP-2537 encoding.
    /// @return true iff every proof is valid for its inputs. Never reverts on bad data (only when given
    ///         less gas than `verifyGas(n)`).
    function verify(uint256[] calldata inputs, bytes calldata proofs) external view returns (bool);

    /// @notice Upper bound of the gas `verify` uses for n proofs, whatever the data.
    function verifyGas(uint256 n) external pure returns (uint256);

    /// @notice keccak256 of the 1920-byte verifying key given at deployment.
    function vkHash() external view returns (bytes32);
}
