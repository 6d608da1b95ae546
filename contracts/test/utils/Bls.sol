// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice BLS12-381 helpers for tests, on the EIP-2537 precompiles (64-byte Fp encoding).
library Bls {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 internal constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 internal constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    error PrecompileFailed(uint256 precompile);

    /// The standard G1 generator.
    function g1() internal pure returns (bytes memory) {
        return abi.encodePacked(
            uint256(0x17f1d3a73197d7942695638c4fa9ac0f),
            uint256(0xc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb),
            uint256(0x08b3f481e3aaa0f1a09e30ed741d8ae4),
            uint256(0xfcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1)
        );
    }

    /// The standard G2 generator.
    function g2() internal pure returns (bytes memory) {
        return abi.encodePacked(
            uint256(0x024aa2b2f08f0a91260805272dc51051),
            uint256(0xc6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8),
            uint256(0x13e02b6052719f607dacd3a088274f65),
            uint256(0x596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e),
            uint256(0x0ce5d527727d6e118cc9cdc6da2e351a),
            uint256(0xadfd9baa8cbdd3a76d429a695160d12c923ac9cc3baca289e193548608b82801),
            uint256(0x0606c4a02ea734cc32acd2b02bc28b99),
            uint256(0xcb3e287e85a763af267492ab572e99ab3f370d275cec1da1aaa9075ff05f79be)
        );
    }

    function g1Mul(bytes memory p, uint256 s) internal view returns (bytes memory out) {
        out = _call(0x0c, abi.encodePacked(p, s), 128);
    }

    function g2Mul(bytes memory p, uint256 s) internal view returns (bytes memory out) {
        out = _call(0x0e, abi.encodePacked(p, s), 256);
    }

    function g1Add(bytes memory p, bytes memory q) internal view returns (bytes memory out) {
        out = _call(0x0b, abi.encodePacked(p, q), 128);
    }

    function g1Neg(bytes memory p) internal pure returns (bytes memory) {
        (uint256 xh, uint256 xl, uint256 yh, uint256 yl) = abi.decode(p, (uint256, uint256, uint256, uint256));
        if (yh == 0 && yl == 0) return p;
        uint256 borrow = P_LO < yl ? 1 : 0;
        unchecked {
            return abi.encode(xh, xl, P_HI - yh - borrow, P_LO - yl);
        }
    }

    /// Multiplicative inverse mod r (Fermat, MODEXP precompile).
    function invR(uint256 a) internal view returns (uint256) {
        bytes memory out = _call(0x05, abi.encodePacked(uint256(32), uint256(32), uint256(32), a, R - 2, R), 32);
        return abi.decode(out, (uint256));
    }

    function _call(uint256 precompile, bytes memory input, uint256 outLen) private view returns (bytes memory out) {
        out = new bytes(outLen);
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), precompile, add(input, 32), mload(input), add(out, 32), outLen)
        }
        if (!ok) revert PrecompileFailed(precompile);
    }
}

/// @notice Groth16 with a known trapdoor: a verifying key whose discrete logs the test knows, so
///         that it can produce proofs satisfying the verification equation for ANY inputs. Exercises
///         the verifier's algebra and encodings; it says nothing about a circuit.
///
/// alpha = a G1, beta = b G2, gamma = g G2, delta = d G2, IC_j = u_j G1. For inputs x let
/// v = u_0 + sum_j x_j u_{j+1}; with A = s G1, B = t G2 and C = c G1,
/// c = (s t - a b - v g) / d, the equation e(A,B) = e(alpha,beta) e(IC(x),gamma) e(C,delta) holds.
contract TrapdoorGroth16 {
    uint256 internal constant R = Bls.R;
    uint256 public a;
    uint256 public b;
    uint256 public g;
    uint256 public d;
    uint256[8] public u;

    constructor(uint256 seed) {
        a = _scalar(seed, 1);
        b = _scalar(seed, 2);
        g = _scalar(seed, 3);
        d = _scalar(seed, 4);
        for (uint256 j; j < 8; ++j) {
            u[j] = _scalar(seed, 10 + j);
        }
    }

    function _scalar(uint256 seed, uint256 k) private pure returns (uint256 s) {
        s = uint256(keccak256(abi.encode(seed, k))) % R;
        if (s == 0) s = 1;
    }

    function vk() external view returns (bytes memory out) {
        bytes memory g1 = Bls.g1();
        bytes memory g2 = Bls.g2();
        out = abi.encodePacked(Bls.g1Mul(g1, a), Bls.g2Mul(g2, b), Bls.g2Mul(g2, g), Bls.g2Mul(g2, d));
        for (uint256 j; j < 8; ++j) {
            out = abi.encodePacked(out, Bls.g1Mul(g1, u[j]));
        }
    }

    /// A valid proof for inputs x, randomised by `seed`.
    function prove(uint256[7] memory x, uint256 seed) public view returns (bytes memory) {
        uint256 s = _scalar(seed, 100);
        uint256 t = _scalar(seed, 101);
        uint256 v = u[0];
        for (uint256 j; j < 7; ++j) {
            v = addmod(v, mulmod(x[j] % R, u[j + 1], R), R);
        }
        uint256 rhs = addmod(mulmod(a, b, R), mulmod(v, g, R), R);
        uint256 c = mulmod(addmod(mulmod(s, t, R), R - rhs, R), Bls.invR(d), R);
        return abi.encodePacked(Bls.g1Mul(Bls.g1(), s), Bls.g2Mul(Bls.g2(), t), Bls.g1Mul(Bls.g1(), c));
    }

    /// Proofs for 7 * n inputs, concatenated.
    function proveAll(uint256[] memory inputs, uint256 seed) external view returns (bytes memory out) {
        uint256 n = inputs.length / 7;
        for (uint256 i; i < n; ++i) {
            uint256[7] memory x;
            for (uint256 j; j < 7; ++j) {
                x[j] = inputs[7 * i + j];
            }
            out = abi.encodePacked(out, prove(x, uint256(keccak256(abi.encode(seed, i)))));
        }
    }
}
