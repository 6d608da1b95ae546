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
///        (R, sum_i r_i x_{i,0}, ..., sum_i r_i x_{i,6}), sum_i r_i C_i is C_0 plus one (n-1)-point
///        G1MSM (one G1ADD), -r_i A_i is a 1-point G1MSM for i >= 1 and a negation for i = 0.
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
    /// Per-point G2MSM price without the discount.
    uint256 internal constant G2MUL_GAS = 22500;
    uint256 internal constant PAIRING_BASE_GAS = 37700;
    uint256 internal constant PAIRING_PER_PAIR_GAS = 32600;

    // Gas of everything in `verify` other than the precompiles' own gas: the 1/64 that every call
    // keeps back, memory, hashing, copying (measured, with a margin; the forge suite checks the
    // bound for valid and invalid data with n = 1..32).
    uint256 internal constant OVERHEAD_BASE_GAS = 30000;
    uint256 internal constant OVERHEAD_PER_PROOF_GAS = 4000;
    /// Gas `verify` may spend before it checks gasleft() against verifyGas(n).
    uint256 internal constant ENTRY_GAS = 5000;

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
            // (n - 1) A-muls + alpha mul + 8-point IC MSM + (n - 1)-point C MSM + G1ADD
            // + (n + 3)-pair pairing.
            precompiles = (n - 1) * G1MUL_GAS + G1MUL_GAS + NUM_IC * G1MUL_GAS + (n - 1) * G1MUL_GAS + G1ADD_GAS
                + PAIRING_BASE_GAS + (n + 3) * PAIRING_PER_PAIR_GAS;
        }
        return precompiles + precompiles / 63 + OVERHEAD_BASE_GAS + n * OVERHEAD_PER_PROOF_GAS;
    }

    /// @inheritdoc IGroth16BatchVerifier
    function verify(uint256[] calldata inputs, bytes calldata proofs) external view returns (bool) {
        uint256 n = proofs.length / PROOF_BYTES;
        if (n == 0 || proofs.length != n * PROOF_BYTES || inputs.length != n * NUM_INPUTS) return false;
        uint256 need = verifyGas(n);
        if (gasleft() + ENTRY_GAS < need) revert InsufficientGas(need);
        for (uint256 k; k < inputs.length; ++k) {
            if (inputs[k] >= SCALAR_FIELD) return false;
        }
        return _verify(n, inputs, proofs);
    }

    /// One assembly block for both paths; Yul functions keep the stack shallow.
    ///   n = 1: e(-A,B) * e(alpha,beta) * e(IC0 + MSM(IC[1..8], x), gamma) * e(C,delta) == 1.
    ///   n > 1: prod_i e(-r_i A_i, B_i) * e(R alpha, beta) * e(MSM(IC, (R, s)), gamma)
    ///          * e(MSM(C, r), delta) == 1 (see the contract doc).
    function _verify(uint256 n, uint256[] calldata inputs, bytes calldata proofs) private view returns (bool ok) {
        address store = VK_STORE;
        assembly ("memory-safe") {
            /// dst (memory, 128 bytes) := -P for the G1 point P at src (calldata). Returns 0 if P's y
            /// is not a canonical field element (the precompiles check everything else).
            function negG1(dst, src) -> valid {
                let yHi := calldataload(add(src, 64))
                let yLo := calldataload(add(src, 96))
                valid := or(lt(yHi, P_HI), and(eq(yHi, P_HI), lt(yLo, P_LO)))
                if or(yHi, yLo) {
                    let borrow := lt(P_LO, yLo)
                    yLo := sub(P_LO, yLo)
                    yHi := sub(sub(P_HI, yHi), borrow)
                }
                calldatacopy(dst, src, 64)
                mstore(add(dst, 64), yHi)
                mstore(add(dst, 96), yLo)
            }

            /// Pairing check over `count` pairs at `pairs`; result word written to `out`.
            function pairingCheck(pairs, count, out) -> success {
                success := staticcall(
                    add(PAIRING_BASE_GAS, mul(count, PAIRING_PER_PAIR_GAS)), PAIRING, pairs, mul(count, 384), out, 32
                )
                success := and(success, eq(mload(out), 1))
            }

            /// Batch path, part 1 (memory after `pairs`: cmsm = (n - 1) x (C_i || r_i) for i >= 1,
            /// icmsm = 8 x (IC_j || scalar_j), scratch = 256 bytes). Fills pair slots 0..n-1 with
            /// (-r_i A_i, B_i), the C MSM input and the IC MSM scalars (R, s_0..s_6). h is at 0x00.
            function perProof(count, pairs, inOff, prOff) -> success {
                let cmsm := add(pairs, mul(add(count, 3), 384))
                let icmsm := add(cmsm, mul(sub(count, 1), 160))
                success := negG1(pairs, prOff) // r_0 = 1: -A_0 by negation
                for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                    let pr := add(prOff, mul(i, PROOF_BYTES))
                    let pa := add(pairs, mul(i, 384))
                    let r := 1
                    if i {
                        mstore(0x20, i)
                        r := mod(keccak256(0x00, 64), SCALAR_FIELD)
                        // -r_i A_i = (r - r_i) A_i
                        let scratch := add(icmsm, 1280)
                        calldatacopy(scratch, pr, 128)
                        mstore(add(scratch, 128), mod(sub(SCALAR_FIELD, r), SCALAR_FIELD))
                        if success { success := staticcall(G1MUL_GAS, G1MSM, scratch, 160, pa, 128) }
                    }
                    calldatacopy(add(pa, 128), add(pr, 128), 256) // B_i
                    if i {
                        // (C_i, r_i); C_0 (r_0 = 1) is added with G1ADD in finish()
                        pa := add(cmsm, mul(sub(i, 1), 160))
                        calldatacopy(pa, add(pr, 384), 128)
                        mstore(add(pa, 128), r)
                    }
                    // R += r_i; s_j += r_i * x_{i,j}
                    pr := add(inOff, mul(i, 224))
                    pa := add(icmsm, 128)
                    mstore(pa, addmod(mload(pa), r, SCALAR_FIELD))
                    for { let j := 0 } lt(j, 7) { j := add(j, 1) } {
                        pa := add(pa, 160)
                        mstore(pa, addmod(mload(pa), mulmod(r, calldataload(add(pr, mul(j, 32))), SCALAR_FIELD), SCALAR_FIELD))
                    }
                }
            }

            /// Batch path, part 2: pairs n, n+1, n+2 and the pairing check.
            function finish(count, vkm, pairs, prOff) -> success {
                let cmsm := add(pairs, mul(add(count, 3), 384))
                let icmsm := add(cmsm, mul(sub(count, 1), 160))
                let scratch := add(icmsm, 1280)
                // Pair n: (R alpha, beta); R is the IC0 scalar
                let pa := add(pairs, mul(count, 384))
                mcopy(scratch, add(vkm, VK_ALPHA), 128)
                mstore(add(scratch, 128), mload(add(icmsm, 128)))
                success := staticcall(G1MUL_GAS, G1MSM, scratch, 160, pa, 128)
                mcopy(add(pa, 128), add(vkm, VK_BETA), 256)
                // Pair n + 1: (sum_i r_i IC(x_i), gamma), one 8-point MSM
                pa := add(pa, 384)
                if success { success := staticcall(mul(NUM_IC, G1MUL_GAS), G1MSM, icmsm, 1280, pa, 128) }
                mcopy(add(pa, 128), add(vkm, VK_GAMMA), 256)
                // Pair n + 2: (C_0 + sum_{i>=1} r_i C_i, delta), one (n - 1)-point MSM and one G1ADD
                pa := add(pa, 384)
                if success {
                    success := staticcall(mul(sub(count, 1), G1MUL_GAS), G1MSM, cmsm, mul(sub(count, 1), 160), scratch, 128)
                }
                calldatacopy(add(scratch, 128), add(prOff, 384), 128)
                if success { success := staticcall(G1ADD_GAS, G1ADD, scratch, 256, pa, 128) }
                mcopy(add(pa, 128), add(vkm, VK_DELTA), 256)
                if success { success := pairingCheck(pairs, add(count, 3), scratch) }
            }

            /// Single path: e(-A,B) * e(alpha,beta) * e(IC0 + MSM(IC[1..8], x), gamma) * e(C,delta).
            function single(vkm, pairs, inOff, prOff) -> success {
                let msm := add(pairs, 1536) // 7 x (IC_j || x_j)
                let addIn := add(msm, 1120) // G1ADD input: MSM result || IC0
                // Pair 0: (-A, B)
                success := negG1(pairs, prOff)
                calldatacopy(add(pairs, 128), add(prOff, 128), 256)
                // Pair 1: (alpha, beta), contiguous in the key
                mcopy(add(pairs, 384), add(vkm, VK_ALPHA), 384)
                // Pair 2: (IC0 + sum_j x_j IC_{j+1}, gamma)
                for { let j := 0 } lt(j, 7) { j := add(j, 1) } {
                    let e := add(msm, mul(j, 160))
                    mcopy(e, add(vkm, add(VK_IC, mul(add(j, 1), 128))), 128)
                    mstore(add(e, 128), calldataload(add(inOff, mul(j, 32))))
                }
                if success { success := staticcall(mul(7, G1MUL_GAS), G1MSM, msm, 1120, addIn, 128) }
                mcopy(add(addIn, 128), add(vkm, VK_IC), 128)
                if success { success := staticcall(G1ADD_GAS, G1ADD, addIn, 256, add(pairs, 768), 128) }
                mcopy(add(pairs, 896), add(vkm, VK_GAMMA), 256)
                // Pair 3: (C, delta)
                calldatacopy(add(pairs, 1152), add(prOff, 384), 128)
                mcopy(add(pairs, 1280), add(vkm, VK_DELTA), 256)
                if success { success := pairingCheck(pairs, 4, msm) }
            }

            let vkm := mload(0x40) // verifying key, 1920 bytes
            let pairs := add(vkm, VK_BYTES) // (n + 3) pairs x 384 bytes, then the MSM inputs
            switch n
            case 1 {
                extcodecopy(store, vkm, 1, VK_BYTES)
                ok := single(vkm, pairs, inputs.offset, proofs.offset)
            }
            default {
                // h = keccak256(abi.encodePacked(inputs, proofs)), hashed in the not yet used pairs
                // area and kept at 0x00 (scratch space) for the coefficients keccak256(h || i).
                calldatacopy(pairs, inputs.offset, mul(inputs.length, 32))
                calldatacopy(add(pairs, mul(inputs.length, 32)), proofs.offset, proofs.length)
                mstore(0x00, keccak256(pairs, add(mul(inputs.length, 32), proofs.length)))

                extcodecopy(store, vkm, 1, VK_BYTES)
                let icmsm := add(add(pairs, mul(add(n, 3), 384)), mul(sub(n, 1), 160))
                for { let j := 0 } lt(j, NUM_IC) { j := add(j, 1) } {
                    let e := add(icmsm, mul(j, 160))
                    mcopy(e, add(vkm, add(VK_IC, mul(j, 128))), 128)
                    mstore(add(e, 128), 0)
                }
                ok := perProof(n, pairs, inputs.offset, proofs.offset)
                if ok { ok := finish(n, vkm, pairs, proofs.offset) }
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
            ok := staticcall(mul(9, G1MUL_GAS), G1MSM, buf, 1440, buf, 128)
            // G2: beta, gamma, delta (3 points of 256 bytes)
            for { let j := 0 } lt(j, 3) { j := add(j, 1) } {
                let e := add(buf, mul(j, 288))
                mcopy(e, add(k, add(VK_BETA, mul(j, 256))), 256)
                mstore(add(e, 256), 0)
            }
            if ok { ok := staticcall(mul(3, G2MUL_GAS), G2MSM, buf, 864, buf, 256) }
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
