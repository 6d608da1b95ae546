// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./utils/Test.sol";
import {Bls, TrapdoorGroth16} from "./utils/Bls.sol";
import {Groth16BatchVerifier} from "../src/Groth16BatchVerifier.sol";
import {IGroth16BatchVerifier} from "../src/interfaces/IGroth16BatchVerifier.sol";

/// Verifier tests with trapdoor proofs (valid for the verification equation, see TrapdoorGroth16).
/// The real-circuit proofs are tested in ZkPowRollupFixture.t.sol.
contract Groth16BatchVerifierTest is Test {
    uint256 internal constant R = Bls.R;

    TrapdoorGroth16 internal td;
    Groth16BatchVerifier internal verifier;
    bytes internal vk;

    function setUp() public {
        td = new TrapdoorGroth16(42);
        vk = td.vk();
        verifier = new Groth16BatchVerifier(vk);
    }

    // ------------------------------------------------------------------ helpers

    function _inputs(uint256 n, uint256 seed) internal pure returns (uint256[] memory x) {
        x = new uint256[](7 * n);
        for (uint256 k; k < x.length; ++k) {
            x[k] = uint256(keccak256(abi.encode(seed, k))) % R;
        }
        // make them look like the real ones: small batch numbers and a 160-bit miner
        for (uint256 i; i < n; ++i) {
            x[7 * i + 1] = i + 1;
            x[7 * i + 4] >>= 128;
            x[7 * i + 5] >>= 128;
            x[7 * i + 6] = uint160(x[7 * i + 6]);
        }
    }

    function _proofs(uint256[] memory x, uint256 seed) internal view returns (bytes memory) {
        return td.proveAll(x, seed);
    }

    function _slice(bytes memory b, uint256 from, uint256 len) internal pure returns (bytes memory out) {
        out = new bytes(len);
        for (uint256 k; k < len; ++k) {
            out[k] = b[from + k];
        }
    }

    function _replace(bytes memory b, uint256 at, bytes memory what) internal pure returns (bytes memory out) {
        out = bytes.concat(b);
        for (uint256 k; k < what.length; ++k) {
            out[at + k] = what[k];
        }
    }

    /// verify() through a low-level call: returns (didNotRevert, result).
    function _try(uint256[] memory x, bytes memory p) internal view returns (bool noRevert, bool result) {
        (bool ok, bytes memory ret) =
            address(verifier).staticcall(abi.encodeCall(IGroth16BatchVerifier.verify, (x, p)));
        if (!ok || ret.length != 32) return (false, false);
        return (true, abi.decode(ret, (bool)));
    }

    function _expectFalse(uint256[] memory x, bytes memory p, string memory what) internal view {
        (bool noRevert, bool result) = _try(x, p);
        assertTrue(noRevert, string.concat(what, ": reverted"));
        assertFalse(result, string.concat(what, ": accepted"));
    }

    // ------------------------------------------------------------------ deployment

    function test_vkHashAndKey() public view {
        assertEq(verifier.vkHash(), keccak256(vk), "vkHash");
        assertEq(verifier.verifyingKey(), vk, "verifyingKey");
        assertEq(vk.length, 1920, "vk length");
    }

    function test_constructor_rejectsWrongLength() public {
        vm.expectRevert(Groth16BatchVerifier.InvalidVerifyingKey.selector);
        new Groth16BatchVerifier(_slice(vk, 0, 1919));
        vm.expectRevert(Groth16BatchVerifier.InvalidVerifyingKey.selector);
        new Groth16BatchVerifier(bytes.concat(vk, hex"00"));
    }

    function test_constructor_rejectsOffCurvePoint() public {
        // IC3 with a bumped y coordinate
        bytes memory bad = bytes.concat(vk);
        bad[896 + 3 * 128 + 127] = bytes1(uint8(bad[896 + 3 * 128 + 127]) ^ 1);
        vm.expectRevert(Groth16BatchVerifier.InvalidVerifyingKey.selector);
        new Groth16BatchVerifier(bad);
        // delta with a bumped coordinate
        bad = bytes.concat(vk);
        bad[640 + 255] = bytes1(uint8(bad[640 + 255]) ^ 1);
        vm.expectRevert(Groth16BatchVerifier.InvalidVerifyingKey.selector);
        new Groth16BatchVerifier(bad);
    }

    function test_constructor_rejectsOffSubgroupPoint() public {
        // (0, 2) is on y^2 = x^3 + 4 but has order 3, outside the r-order subgroup.
        bytes memory bad = _replace(vk, 896, abi.encode(uint256(0), uint256(0), uint256(0), uint256(2)));
        vm.expectRevert(Groth16BatchVerifier.InvalidVerifyingKey.selector);
        new Groth16BatchVerifier(bad);
    }

    function test_constructor_rejectsInfinity() public {
        vm.expectRevert(Groth16BatchVerifier.InvalidVerifyingKey.selector);
        new Groth16BatchVerifier(_replace(vk, 0, new bytes(128))); // alpha
        vm.expectRevert(Groth16BatchVerifier.InvalidVerifyingKey.selector);
        new Groth16BatchVerifier(_replace(vk, 640, new bytes(256))); // delta
    }

    // ------------------------------------------------------------------ valid proofs

    function test_single_valid() public view {
        uint256[] memory x = _inputs(1, 1);
        assertTrue(verifier.verify(x, _proofs(x, 7)), "single proof");
    }

    function test_batch_valid() public view {
        uint256[5] memory ns = [uint256(2), 3, 4, 8, 16];
        for (uint256 k; k < ns.length; ++k) {
            uint256[] memory x = _inputs(ns[k], 100 + k);
            assertTrue(verifier.verify(x, _proofs(x, 200 + k)), string.concat("batch n=", vm.toString(ns[k])));
        }
    }

    function test_zeroInputs_valid() public view {
        uint256[] memory x = new uint256[](14);
        assertTrue(verifier.verify(x, _proofs(x, 3)), "all-zero inputs, n=2");
        uint256[] memory y = new uint256[](7);
        assertTrue(verifier.verify(y, _proofs(y, 3)), "all-zero inputs, n=1");
    }

    function test_maxInputs_valid() public view {
        uint256[] memory x = new uint256[](14);
        for (uint256 k; k < 14; ++k) {
            x[k] = R - 1;
        }
        assertTrue(verifier.verify(x, _proofs(x, 5)), "inputs r-1");
    }

    // ------------------------------------------------------------------ invalid data: false, never a revert

    function test_wrongLengths_false() public view {
        uint256[] memory x = _inputs(2, 9);
        bytes memory p = _proofs(x, 9);
        _expectFalse(x, "", "empty proofs");
        _expectFalse(new uint256[](0), "", "nothing");
        _expectFalse(x, _slice(p, 0, 1023), "short proofs");
        _expectFalse(x, bytes.concat(p, hex"00"), "long proofs");
        _expectFalse(x, _slice(p, 0, 512), "one proof, two input sets");
        uint256[] memory x1 = _inputs(1, 9);
        _expectFalse(x1, p, "two proofs, one input set");
        uint256[] memory x15 = new uint256[](15);
        _expectFalse(x15, p, "15 inputs");
    }

    function test_inputNotInField_false() public view {
        for (uint256 n = 1; n <= 2; ++n) {
            uint256[] memory x = _inputs(n, 11);
            bytes memory p = _proofs(x, 11);
            x[3] = x[3] + R; // same residue, not canonical
            _expectFalse(x, p, "input + r");
            x[3] = type(uint256).max;
            _expectFalse(x, p, "input max");
        }
    }

    function test_eachInputMatters() public view {
        for (uint256 n = 1; n <= 3; n += 2) {
            uint256[] memory x = _inputs(n, 12);
            bytes memory p = _proofs(x, 12);
            for (uint256 k; k < x.length; ++k) {
                uint256 old = x[k];
                x[k] = addmod(old, 1, R);
                _expectFalse(x, p, string.concat("input changed k=", vm.toString(k)));
                x[k] = old;
            }
            assertTrue(verifier.verify(x, p), "restored");
        }
    }

    function test_swappedProofs_false() public view {
        uint256[] memory x = _inputs(2, 13);
        bytes memory p = _proofs(x, 13);
        bytes memory swapped = bytes.concat(_slice(p, 512, 512), _slice(p, 0, 512));
        _expectFalse(x, swapped, "swapped");
    }

    function test_oneBadProofInBatch_false() public view {
        uint256[] memory x = _inputs(4, 14);
        bytes memory p = _proofs(x, 14);
        // proof 2 for other inputs
        uint256[7] memory other;
        other[0] = 5;
        bytes memory bad = _replace(p, 2 * 512, td.prove(other, 99));
        _expectFalse(x, bad, "one bad proof");
        // proof 0 (the one with coefficient 1) bad
        bad = _replace(p, 0, td.prove(other, 99));
        _expectFalse(x, bad, "first proof bad");
    }

    /// Errors that cancel under equal coefficients (C_0 + G, C_1 - G) must not pass: this is what
    /// the random coefficients are for.
    function test_cancellingErrors_false() public view {
        uint256[] memory x = _inputs(2, 15);
        bytes memory p = _proofs(x, 15);
        bytes memory c0 = Bls.g1Add(_slice(p, 384, 128), Bls.g1());
        bytes memory c1 = Bls.g1Add(_slice(p, 512 + 384, 128), Bls.g1Neg(Bls.g1()));
        bytes memory bad = _replace(_replace(p, 384, c0), 512 + 384, c1);
        _expectFalse(x, bad, "cancelling errors");
    }

    function test_negatedA_false() public view {
        uint256[] memory x = _inputs(1, 16);
        bytes memory p = _proofs(x, 16);
        _expectFalse(x, _replace(p, 0, Bls.g1Neg(_slice(p, 0, 128))), "-A");
    }

    function test_nonCanonicalY_false() public view {
        for (uint256 n = 1; n <= 2; ++n) {
            uint256[] memory x = _inputs(n, 17);
            bytes memory p = _proofs(x, 17);
            // y of A_0 replaced by y + p (does not fit the 48-byte encoding: high word >= 2^128 or >= p)
            (uint256 yh, uint256 yl) = abi.decode(_slice(p, 64, 64), (uint256, uint256));
            uint256 lo;
            uint256 carry;
            unchecked {
                lo = yl + Bls.P_LO;
                carry = lo < yl ? 1 : 0;
            }
            _expectFalse(x, _replace(p, 64, abi.encode(yh + Bls.P_HI + carry, lo)), "y + p");
            // y = p exactly, x = 0 (would negate to infinity)
            _expectFalse(x, _replace(p, 0, abi.encode(0, 0, Bls.P_HI, Bls.P_LO)), "(0, p)");
            // 17th byte set in an Fp element
            _expectFalse(x, _replace(p, 128, abi.encode(uint256(1) << 200)), "padding byte");
        }
    }

    function test_offCurveAndOffSubgroup_false() public view {
        for (uint256 n = 1; n <= 3; ++n) {
            uint256[] memory x = _inputs(n, 18);
            bytes memory p = _proofs(x, 18);
            uint256 last = (n - 1) * 512;
            bytes memory offCurve = abi.encode(uint256(0), uint256(1), uint256(0), uint256(1));
            bytes memory offGroup = abi.encode(uint256(0), uint256(0), uint256(0), uint256(2));
            _expectFalse(x, _replace(p, last, offCurve), "A off curve");
            _expectFalse(x, _replace(p, last + 384, offCurve), "C off curve");
            _expectFalse(x, _replace(p, last, offGroup), "A off subgroup");
            _expectFalse(x, _replace(p, last + 384, offGroup), "C off subgroup");
            _expectFalse(x, _replace(p, 0, offGroup), "A0 off subgroup");
            _expectFalse(x, _replace(p, 384, offGroup), "C0 off subgroup (enters through G1ADD)");
            _expectFalse(x, _replace(p, last + 128, new bytes(256)), "B infinity");
            bytes memory bBad = _slice(p, last + 128, 256);
            bBad[255] = bytes1(uint8(bBad[255]) ^ 1);
            _expectFalse(x, _replace(p, last + 128, bBad), "B off curve");
            _expectFalse(x, _replace(p, last, new bytes(128)), "A infinity");
        }
    }

    // ------------------------------------------------------------------ gas

    function test_insufficientGas_reverts() public {
        uint256[] memory x = _inputs(2, 19);
        bytes memory p = _proofs(x, 19);
        uint256 need = verifier.verifyGas(2);
        vm.expectRevert(abi.encodeWithSelector(IGroth16BatchVerifier.InsufficientGas.selector, need));
        verifier.verify{gas: need / 2}(x, p);
    }

    /// verifyGas(n) bounds the gas for valid and for invalid data (invalid points make the
    /// precompiles burn their whole budget).
    function test_gasBound() public view {
        for (uint256 n = 1; n <= 32; n = n < 4 ? n + 1 : n * 2) {
            uint256[] memory x = _inputs(n, 20 + n);
            bytes memory p = _proofs(x, 20 + n);
            uint256 bound = verifier.verifyGas(n);
            uint256 g0 = gasleft();
            bool ok = verifier.verify{gas: bound}(x, p);
            uint256 used = g0 - gasleft();
            assertTrue(ok, "valid");
            assertLe(used, bound, string.concat("gas bound, valid, n=", vm.toString(n)));
            // B of the last proof off the curve: every MSM succeeds, then the pairing fails and
            // burns its whole budget (the most expensive failure)
            bytes memory bad = bytes.concat(p);
            bad[(n - 1) * 512 + 128 + 255] = bytes1(uint8(bad[(n - 1) * 512 + 128 + 255]) ^ 1);
            g0 = gasleft();
            ok = verifier.verify{gas: bound}(x, bad);
            used = g0 - gasleft();
            assertFalse(ok, "invalid");
            assertLe(used, bound, string.concat("gas bound, invalid, n=", vm.toString(n)));
        }
    }

    /// With less gas than verifyGas(n), a valid batch is never judged invalid: verify either
    /// reverts (InsufficientGas or out of gas) or returns true.
    function testFuzz_lowGas_neverWrongFalse(uint256 g, bool two) public view {
        uint256 n = two ? 2 : 1;
        uint256[] memory x = _inputs(n, 23);
        bytes memory p = _proofs(x, 23);
        uint256 need = verifier.verifyGas(n);
        g = bound(g, need - 60000, need);
        (bool ok, bytes memory ret) =
            address(verifier).staticcall{gas: g}(abi.encodeCall(IGroth16BatchVerifier.verify, (x, p)));
        if (ok) assertTrue(abi.decode(ret, (bool)), "valid proof judged invalid for lack of gas");
    }

    function test_gasReport() public view {
        uint256[6] memory ns = [uint256(1), 2, 4, 8, 16, 32];
        for (uint256 k; k < ns.length; ++k) {
            uint256 n = ns[k];
            uint256[] memory x = _inputs(n, 300 + k);
            bytes memory p = _proofs(x, 300 + k);
            uint256 g0 = gasleft();
            assertTrue(verifier.verify(x, p), "valid");
            uint256 used = g0 - gasleft();
            log(string.concat("verify() gas, n=", vm.toString(n)), used);
        }
    }

    // ------------------------------------------------------------------ fuzz

    /// Random bytes as proofs and random inputs: false, never a revert.
    function testFuzz_randomData_false(bytes memory p, uint256 seed, uint8 nIn) public view {
        uint256[] memory x = new uint256[](bound(nIn, 0, 21));
        for (uint256 k; k < x.length; ++k) {
            x[k] = uint256(keccak256(abi.encode(seed, k)));
        }
        (bool noRevert, bool result) = _try(x, p);
        assertTrue(noRevert, "reverted");
        assertFalse(result, "accepted random data");
    }

    /// Random full-length proofs (random field-sized coordinates) with in-range inputs.
    function testFuzz_randomProofs_false(uint256 seed, uint8 nRaw) public view {
        uint256 n = bound(nRaw, 1, 4);
        uint256[] memory x = _inputs(n, seed);
        bytes memory p;
        for (uint256 w; w < 16 * n; ++w) {
            uint256 word = uint256(keccak256(abi.encode(seed, "p", w)));
            // even words are the high halves of Fp elements: keep them below 2^128 to pass encoding
            if (w % 2 == 0) word >>= 129;
            p = abi.encodePacked(p, word);
        }
        _expectFalse(x, p, "random proofs");
    }

    /// A valid batch with one byte flipped anywhere: false, never a revert.
    function testFuzz_flippedByte_false(uint256 pos, uint8 bit, bool twoProofs) public view {
        uint256 n = twoProofs ? 2 : 1;
        uint256[] memory x = _inputs(n, 21);
        bytes memory p = _proofs(x, 21);
        pos = bound(pos, 0, p.length - 1);
        // the 16 padding bytes of every 64-byte Fp element must stay zero; flipping them is
        // covered too (encoding error), any other byte changes a coordinate
        uint8 mask = uint8(2) ** (bit % 8);
        p[pos] = bytes1(uint8(p[pos]) ^ mask);
        _expectFalse(x, p, "flipped byte");
    }

    /// A valid batch with one input changed to any value: false, never a revert.
    function testFuzz_changedInput_false(uint256 k, uint256 value) public view {
        uint256[] memory x = _inputs(2, 22);
        bytes memory p = _proofs(x, 22);
        k = bound(k, 0, x.length - 1);
        vm.assume(value != x[k]);
        x[k] = value;
        _expectFalse(x, p, "changed input");
    }
}
