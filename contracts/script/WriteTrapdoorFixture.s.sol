// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "../test/utils/Test.sol";
import {TrapdoorGroth16} from "../test/utils/Bls.sol";

interface VmWrite {
    function writeFile(string calldata path, string calldata data) external;
    function toString(bytes calldata value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
    function toString(address value) external pure returns (string memory);
}

/// Writes test/fixtures/trapdoor-proofs.json: a file in the exact format of the prover's
/// test/fixtures/proofs.json (`zkpow fixtures`), with trapdoor proofs (see TrapdoorGroth16) instead
/// of circuit proofs. It keeps the fixture tests exercised while proofs.json is absent.
/// Run: make -f mk/evm.mk trapdoor-fixture
contract WriteTrapdoorFixture is Test {
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    uint256 internal constant K = 4;
    uint256 internal constant BATCHES = 16;
    VmWrite internal constant w = VmWrite(address(vm));

    TrapdoorGroth16 internal td;
    address internal constant ROLLUP = address(uint160(0xfe11e));
    address internal constant MINER = address(uint160(0xbeef));
    string internal batchesJson = "[";
    string internal rootsJson = "[";
    string internal proofsJson = "[";
    string internal inputsJson = "[";

    function run() external {
        td = new TrapdoorGroth16(99);
        bytes32 genesis = bytes32(uint256(keccak256("genesis")) % R);
        bytes32 prev = genesis;
        for (uint256 i; i < BATCHES; ++i) {
            prev = _batch(i, prev);
        }
        string memory head = string.concat(
            "{\"shape\":{\"k\":4,\"d\":8},\"vk\":\"",
            w.toString(td.vk()),
            "\",\"chain_id\":31337,\"rollup\":\"",
            w.toString(ROLLUP),
            "\",\"miner\":\"",
            w.toString(MINER),
            "\",\"genesis_root\":\"",
            w.toString(genesis),
            "\",\"batch_size\":80,"
        );
        string memory body = string.concat(
            "\"batches\":", batchesJson, "],\"roots\":", rootsJson, "],\"proofs\":", proofsJson, "],\"inputs\":", inputsJson, "]}\n"
        );
        w.writeFile(string.concat(vm.projectRoot(), "/test/fixtures/trapdoor-proofs.json"), string.concat(head, body));
    }

    function _batch(uint256 i, bytes32 prev) internal returns (bytes32 next) {
        bytes memory b = new bytes(20 * K);
        for (uint256 k; k < b.length; ++k) {
            b[k] = bytes1(uint8(uint256(keccak256(abi.encode(i, k)))));
        }
        next = bytes32(uint256(keccak256(abi.encode("root", i))) % R);
        uint256 h = uint256(sha256(b));
        uint256 dom = uint256(keccak256(abi.encodePacked(uint256(31337), ROLLUP))) >> 8;
        uint256[7] memory x =
            [dom, i + 1, uint256(prev), uint256(next), h >> 128, h & type(uint128).max, uint256(uint160(MINER))];
        string memory sep = i == 0 ? "" : ",";
        batchesJson = string.concat(batchesJson, sep, "\"", w.toString(b), "\"");
        rootsJson = string.concat(rootsJson, sep, "\"", w.toString(next), "\"");
        proofsJson = string.concat(proofsJson, sep, "\"", w.toString(td.prove(x, i)), "\"");
        string memory one = "[";
        for (uint256 j; j < 7; ++j) {
            one = string.concat(one, j == 0 ? "" : ",", "\"", w.toString(bytes32(x[j])), "\"");
        }
        inputsJson = string.concat(inputsJson, sep, one, "]");
    }
}
