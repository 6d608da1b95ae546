// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IGroth16BatchVerifier} from "./interfaces/IGroth16BatchVerifier.sol";

/// @title Groth16BatchVerifier
/// @notice Verifies zkpow batch proofs (Groth16 over BLS12-381) with the EIP-2537 precompiles.
///         One contract per circuit shape; the verifying key is fixed at deployment.
///
/// Encodings (EIP-2537): an Fp element is 64 bytes (16 zero bytes || 48-byte big-endian value),
/// G1 = x || y (128 bytes), G2 = x.c0 || x.c1 || y.c0 || y.c1 (256 bytes), infinity = all zeros.
/// A proof is A (G1) || B (G2) || C (G1) = 512 bytes. The verifying key is
/// alpha (G1) || beta (G2) || gamma (G2) || delta (G2) || IC[0..8] (G1) = 1920 bytes.
///
/// A proof with public inputs x is valid iff e(A,B) = e(alpha,beta) * e(IC(x),gamma) * e(C,delta)
/// with IC(x) = IC0 + sum_j x_j * IC_{j+1}.
///
/// n = 1: one pairing check of 4 pairs, e(-A,B) e(alpha,beta) e(IC(x),gamma) e(C,delta) = 1, with
///        IC(x) from one 7-point G1MSM plus one G1ADD.
/// n > 1: one pairing check of n + 3 pairs over a random linear combination of the n equations,
///        with coefficients r_0 = 1 and, for i >= 1,
///            r_i = uint256(keccak256(abi.encodePacked(h, uint256(i)))) mod r,
///            h   = keccak256(abi.encodePacked(inputs, proofs)),
///        checking
///            prod_i e(-r_i A_i, B_i) * e(R alpha, beta) * e(sum_i r_i IC(x_i), gamma) * e(sum_i r_i C_i, delta) = 1
///        where R = sum_i r_i, sum_i r_i IC(x_i) is ONE 8-point G1MSM over IC with scalars
///        (R, sum_i r_i x_{i,0}, ..., sum_i r_i x_{i,6}) and sum_i r_i C_i is one n-point G1MSM.
///        See docs/CONTRACTS.md for the soundness argument.
///
/// The verifying key lives in the code of a data contract written by the constructor (read with one
/// EXTCODECOPY), not in storage. `verify` never reverts on bad data: wrong lengths, inputs >= r,
/// non-canonical, off-curve or off-subgroup points and precompile failures all return false. Every
/// precompile call gets an explicit gas budget, so a failing call burns only that budget and
/// `verifyGas(n)` bounds the total gas whatever the data.
contract Groth16BatchVerifier is IGroth16BatchVerifier {
    /// @notice Order of the BLS12-381 scalar field (the group order r).
    uint256 public constant SCALAR_FIELD =
        0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 public constant NUM_INPUTS = 7;
    uint256 public constant PROOF_BYTES = 512;
    uint256 public constant VK_BYTES = 1920;

    /// Base field modulus p as the two 32-byte words of its 64-byte EIP-2537 encoding.
    uint256 internal constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 internal constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    // Offsets inside the verifying key.
    uint256 internal constant VK_ALPHA = 0;
    uint256 internal constant VK_BETA = 128;
    uint256 internal constant VK_GAMMA = 384;
    uint256 internal constant VK_DELTA = 640;
    uint256 internal constant VK_IC = 896;
    uint256 internal constant NUM_IC = 8;

    // EIP-2537 precompiles and their gas prices (Prague).
    uint256 internal constant G1ADD = 0x0b;
    uint256 internal constant G1MSM = 0x0c;
    uint256 internal constant G2MSM = 0x0e;
    uint256 internal constant PAIRING = 0x0f;
    uint256 internal constant G1ADD_GAS = 375;
    /// Per-point G1MSM price without the multi-point discount: an upper bound of any G1MSM.
    uint256 internal constant G1MUL_GAS = 12000;
    uint256 internal constant PAIRING_BASE_GAS = 37700;
    uint256 internal constant PAIRING_PER_PAIR_GAS = 32600;

    // Gas of everything in `verify` other than precompile calls (measured, with a wide margin;
    // the forge suite checks the bound for n = 1..32).
    uint256 internal constant OVERHEAD_BASE_GAS = 25000;
    uint256 internal constant OVERHEAD_PER_PROOF_GAS = 4000;

    /// @notice The verifying key given at deployment is not 1920 bytes of valid points.
    error InvalidVerifyingKey();

    /// Data contract whose code is 0x00 || vk.
    address private immutable VK_STORE;
    bytes32 private immutable VK_HASH;

    constructor(bytes memory vk) {
        if (vk.length != VK_BYTES || !_validVk(vk)) revert InvalidVerifyingKey();
        // Init code that returns 0x00 || vk as the runtime code (the leading STOP makes the
        // data contract inert): PUSH2 len DUP1 PUSH1 10 RETURNDATASIZE CODECOPY RETURNDATASIZE RETURN.
        bytes memory code = abi.encodePacked(hex"00", vk);
        bytes memory init = abi.encodePacked(hex"61", uint16(code.length), hex"80600a3d393df3", code);
        address store;
        assembly ("memory-safe") {
            store := create(0, add(init, 32), mload(init))
        }
        if (store == address(0)) revert InvalidVerifyingKey();
        VK_STORE = store;
        VK_HASH = keccak256(vk);
    }

    /// @inheritdoc IGroth16BatchVerifier
    function vkHash() external view returns (bytes32) {
        return VK_HASH;
    }

    /// @notice The verifying key given at deployment (1920 bytes).
    function verifyingKey() external view returns (bytes memory vk) {
        vk = new bytes(VK_BYTES);
        address store = VK_STORE;
        assembly ("memory-safe") {
            extcodecopy(store, add(vk, 32), 1, VK_BYTES)
        }
    }

    /// @inheritdoc IGroth16BatchVerifier
    function verifyGas(uint256 n) public pure returns (uint256) {
        if (n == 0) return OVERHEAD_BASE_GAS;
        if (n > type(uint32).max) return type(uint256).max;
        uint256 precompiles;
        if (n == 1) {
            // 7-point MSM + G1ADD + 4-pair pairing.
            precompiles = 7 * G1MUL_GAS + G1ADD_GAS + PAIRING_BASE_GAS + 4 * PAIRING_PER_PAIR_GAS;
        } else {
            // (n - 1) A-muls + alpha mul + 8-point IC MSM + n-point C MSM + (n + 3)-pair pairing.
            precompiles = (n - 1) * G1MUL_GAS + G1MUL_GAS + NUM_IC * G1MUL_GAS + n * G1MUL_GAS
                + PAIRING_BASE_GAS + (n + 3) * PAIRING_PER_PAIR_GAS;
        }
        return precompiles + OVERHEAD_BASE_GAS + n * OVERHEAD_PER_PROOF_GAS;
    }

    /// @inheritdoc IGroth16BatchVerifier
    function verify(uint256[] calldata inputs, bytes calldata proofs) external view returns (bool) {
        uint256 n = proofs.length / PROOF_BYTES;
        if (n == 0 || proofs.length != n * PROOF_BYTES || inputs.length != n * NUM_INPUTS) return false;
        uint256 need = verifyGas(n);
        if (gasleft() < need) revert InsufficientGas(need);
        for (uint256 k; k < inputs.length; ++k) {
            if (inputs[k] >= SCALAR_FIELD) return false;
        }
        return n == 1 ? _verifySingle(inputs, proofs) : _verifyBatch(n, inputs, proofs);
    }

    /// n = 1: e(-A,B) * e(alpha,beta) * e(IC0 + MSM(IC[1..8], x), gamma) * e(C,delta) == 1.
    function _verifySingle(uint256[] calldata inputs, bytes calldata proof) private view returns (bool ok) {
        address store = VK_STORE;
        assembly ("memory-safe") {
            let vkm := mload(0x40) // verifying key, 1920 bytes
            let pairs := add(vkm, VK_BYTES) // 4 pairs x 384 bytes
            let msm := add(pairs, 1536) // 7 x (G1 || scalar)
            let addIn := add(msm, 1120) // G1ADD input: MSM result || IC0
            extcodecopy(store, vkm, 1, VK_BYTES)

            ok := 1
            // Pair 0: (-A, B). y must be a canonical Fp element; -y = p - y (y = 0 stays 0).
            let a := proof.offset
            let yHi := calldataload(add(a, 64))
            let yLo := calldataload(add(a, 96))
            if iszero(or(lt(yHi, P_HI), and(eq(yHi, P_HI), lt(yLo, P_LO)))) { ok := 0 }
            if iszero(iszero(or(yHi, yLo))) {
                let borrow := lt(P_LO, yLo)
                yLo := sub(P_LO, yLo)
                yHi := sub(sub(P_HI, yHi), borrow)
            }
            calldatacopy(pairs, a, 64)
            mstore(add(pairs, 64), yHi)
            mstore(add(pairs, 96), yLo)
            calldatacopy(add(pairs, 128), add(a, 128), 256)
            // Pair 1: (alpha, beta) -- contiguous in the key.
            mcopy(add(pairs, 384), add(vkm, VK_ALPHA), 384)
            // Pair 2: (IC(x), gamma).
            for { let j := 0 } lt(j, 7) { j := add(j, 1) } {
                let e := add(msm, mul(j, 160))
                mcopy(e, add(vkm, add(VK_IC, mul(add(j, 1), 128))), 128)
                mstore(add(e, 128), calldataload(add(inputs.offset, mul(j, 32))))
            }
            if ok { ok := staticcall(mul(7, G1MUL_GAS), G1MSM, msm, 1120, addIn, 128) }
            mcopy(add(addIn, 128), add(vkm, VK_IC), 128)
            if ok { ok := staticcall(G1ADD_GAS, G1ADD, addIn, 256, add(pairs, 768), 128) }
            mcopy(add(pairs, 896), add(vkm, VK_GAMMA), 256)
            // Pair 3: (C, delta).
            calldatacopy(add(pairs, 1152), add(a, 384), 128)
            mcopy(add(pairs, 1280), add(vkm, VK_DELTA), 256)
            if ok {
                ok := staticcall(add(PAIRING_BASE_GAS, mul(4, PAIRING_PER_PAIR_GAS)), PAIRING, pairs, 1536, msm, 32)
                ok := and(ok, eq(mload(msm), 1))
            }
        }
    }

    /// n > 1: one (n + 3)-pair pairing check of the random linear combination (see the contract doc).
    function _verifyBatch(uint256 n, uint256[] calldata inputs, bytes calldata proofs)
        private
        view
        returns (bool ok)
    {
        address store = VK_STORE;
        assembly ("memory-safe") {
            let vkm := mload(0x40) // verifying key, 1920 bytes
            let pairs := add(vkm, VK_BYTES) // (n + 3) pairs x 384 bytes
            let cmsm := add(pairs, mul(add(n, 3), 384)) // n x (C_i || r_i)
            let icmsm := add(cmsm, mul(n, 160)) // 8 x (IC_j || scalar_j)
            let scratch := add(icmsm, 1280) // 160 bytes: single-point MSM input, keccak input, result

            // h = keccak256(abi.encodePacked(inputs, proofs)), hashed from the (not yet used) pairs area.
            let inLen := mul(inputs.length, 32)
            calldatacopy(pairs, inputs.offset, inLen)
            calldatacopy(add(pairs, inLen), proofs.offset, proofs.length)
            let h := keccak256(pairs, add(inLen, proofs.length))

            extcodecopy(store, vkm, 1, VK_BYTES)
            for { let j := 0 } lt(j, NUM_IC) { j := add(j, 1) } {
                let e := add(icmsm, mul(j, 160))
                mcopy(e, add(vkm, add(VK_IC, mul(j, 128))), 128)
                mstore(add(e, 128), 0)
            }

            ok := 1
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let pr := add(proofs.offset, mul(i, PROOF_BYTES))
                let pa := add(pairs, mul(i, 384))
                let r := 1
                switch i
                case 0 {
                    // -A_0 by negating y (r_0 = 1).
                    let yHi := calldataload(add(pr, 64))
                    let yLo := calldataload(add(pr, 96))
                    if iszero(or(lt(yHi, P_HI), and(eq(yHi, P_HI), lt(yLo, P_LO)))) { ok := 0 }
                    if iszero(iszero(or(yHi, yLo))) {
                        let borrow := lt(P_LO, yLo)
                        yLo := sub(P_LO, yLo)
                        yHi := sub(sub(P_HI, yHi), borrow)
                    }
                    calldatacopy(pa, pr, 64)
                    mstore(add(pa, 64), yHi)
                    mstore(add(pa, 96), yLo)
                }
                default {
                    mstore(scratch, h)
                    mstore(add(scratch, 32), i)
                    r := mod(keccak256(scratch, 64), SCALAR_FIELD)
                    // -r_i A_i = (r - r_i) A_i
                    calldatacopy(scratch, pr, 128)
                    mstore(add(scratch, 128), mod(sub(SCALAR_FIELD, r), SCALAR_FIELD))
                    if ok { ok := staticcall(G1MUL_GAS, G1MSM, scratch, 160, pa, 128) }
                }
                // B_i
                calldatacopy(add(pa, 128), add(pr, 128), 256)
                // (C_i, r_i)
                let ce := add(cmsm, mul(i, 160))
                calldatacopy(ce, add(pr, 384), 128)
                mstore(add(ce, 128), r)
                // IC scalars: R += r_i; s_j += r_i * x_{i,j}
                let sp := add(icmsm, 128)
                mstore(sp, addmod(mload(sp), r, SCALAR_FIELD))
                let xs := add(inputs.offset, mul(i, 224))
                for { let j := 0 } lt(j, 7) { j := add(j, 1) } {
                    sp := add(sp, 160)
                    mstore(sp, addmod(mload(sp), mulmod(r, calldataload(add(xs, mul(j, 32))), SCALAR_FIELD), SCALAR_FIELD))
                }
            }

            // Pair n: (R * alpha, beta)
            let pa := add(pairs, mul(n, 384))
            mcopy(scratch, add(vkm, VK_ALPHA), 128)
            mstore(add(scratch, 128), mload(add(icmsm, 128)))
            if ok { ok := staticcall(G1MUL_GAS, G1MSM, scratch, 160, pa, 128) }
            mcopy(add(pa, 128), add(vkm, VK_BETA), 256)
            // Pair n + 1: (sum_i r_i IC(x_i), gamma)
            pa := add(pa, 384)
            if ok { ok := staticcall(mul(NUM_IC, G1MUL_GAS), G1MSM, icmsm, 1280, pa, 128) }
            mcopy(add(pa, 128), add(vkm, VK_GAMMA), 256)
            // Pair n + 2: (sum_i r_i C_i, delta)
            pa := add(pa, 384)
            if ok { ok := staticcall(mul(n, G1MUL_GAS), G1MSM, cmsm, mul(n, 160), pa, 128) }
            mcopy(add(pa, 128), add(vkm, VK_DELTA), 256)

            if ok {
                let pairsLen := mul(add(n, 3), 384)
                ok := staticcall(add(PAIRING_BASE_GAS, mul(add(n, 3), PAIRING_PER_PAIR_GAS)), PAIRING, pairs, pairsLen, scratch, 32)
                ok := and(ok, eq(mload(scratch), 1))
            }
        }
    }

    /// Checks that the key's G1 points (alpha, IC) and G2 points (beta, gamma, delta) are valid
    /// subgroup points (a zero-scalar MSM validates every input point) and that alpha, beta, gamma
    /// and delta are not the point at infinity.
    function _validVk(bytes memory vk) private view returns (bool ok) {
        assembly ("memory-safe") {
            let k := add(vk, 32)
            let buf := mload(0x40)
            // G1: alpha, IC0..IC7 (9 points)
            mcopy(buf, add(k, VK_ALPHA), 128)
            mstore(add(buf, 128), 0)
            for { let j := 0 } lt(j, NUM_IC) { j := add(j, 1) } {
                let e := add(buf, mul(add(j, 1), 160))
                mcopy(e, add(k, add(VK_IC, mul(j, 128))), 128)
                mstore(add(e, 128), 0)
            }
            ok := staticcall(gas(), G1MSM, buf, 1440, buf, 128)
            // G2: beta, gamma, delta (3 points of 256 bytes)
            for { let j := 0 } lt(j, 3) { j := add(j, 1) } {
                let e := add(buf, mul(j, 288))
                mcopy(e, add(k, add(VK_BETA, mul(j, 256))), 256)
                mstore(add(e, 256), 0)
            }
            if ok { ok := staticcall(gas(), G2MSM, buf, 864, buf, 256) }
            // No infinity among alpha, beta, gamma, delta.
            function isZero(p, len) -> z {
                z := 1
                for { let o := 0 } lt(o, len) { o := add(o, 32) } {
                    if mload(add(p, o)) { z := 0 }
                }
            }
            if isZero(add(k, VK_ALPHA), 128) { ok := 0 }
            if isZero(add(k, VK_BETA), 256) { ok := 0 }
            if isZero(add(k, VK_GAMMA), 256) { ok := 0 }
            if isZero(add(k, VK_DELTA), 256) { ok := 0 }
        }
    }
}
