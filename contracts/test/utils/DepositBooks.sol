// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {MinerDeposit} from "../../src/MinerDeposit.sol";

/// The identities documented in MinerDeposit, shared by the deposit and rollup suites.
abstract contract DepositBooks is Test {
    function _checkDepositIdentities(MinerDeposit d) internal view {
        assertEq(
            address(d).balance,
            d.totalStaked() + d.totalBudget() + d.totalReserved() + d.totalClaimable(),
            "balance = staked + budget + reserved + claimable"
        );
        assertEq(d.totalDeposited(), d.totalStaked() + d.totalWithdrawn() + d.totalSlashed(), "deposits add up");
        assertEq(
            d.totalFunded() + d.totalSlashed(),
            d.totalBudget() + d.totalReserved() + d.totalClaimable() + d.totalRewardsPaid(),
            "rewards add up"
        );
        assertEq(
            d.totalDeposited() + d.totalFunded(),
            address(d).balance + d.totalWithdrawn() + d.totalRewardsPaid(),
            "funds conserved"
        );
    }
}
