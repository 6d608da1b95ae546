// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RollupTestBase} from "./utils/RollupTestBase.sol";
import {ZkPowRollup} from "../src/ZkPowRollup.sol";
import {MinerDeposit} from "../src/MinerDeposit.sol";

/// Attacks on the bond and reward rules, each shown to fail.
contract ZkPowRollupAttacksTest is RollupTestBase {
    address internal mallory = address(0x3A11);

    /// Commit junk, then try to take the deposit out before the penalty: only the free part can
    /// leave, and every penalty is then taken in full from the locked bonds.
    function test_attack_withdrawDepositToEscapePenalty() public {
        _post(1);
        _post(1);
        _fundMiner(mallory, 1.5 ether);
        uint256 o = block.number;
        _commit(mallory, 1, 1, hex"6a756e6b"); // junk, revealed wrong later
        _commit(mallory, 2, 2, hex"6a756e6b"); // junk, never revealed
        bytes memory p1 = _proof(1, 1, alice);
        _commit(alice, 1, 1, p1);
        assertEq(dep.lockedOf(mallory), 1 ether, "two bonds");

        vm.startPrank(mallory);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0.5 ether, 1.5 ether));
        dep.requestWithdrawal(1.5 ether);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0.5 ether, 0.5 ether + 1));
        dep.requestWithdrawal(0.5 ether + 1);
        dep.requestWithdrawal(0.5 ether); // the free part only
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, 1));
        dep.requestWithdrawal(1);
        vm.stopPrank();
        assertEq(dep.depositOf(mallory), 1 ether, "the bonds stay");

        // both penalties are paid in full out of the bonds
        vm.roll(o + T1);
        assertFalse(_reveal(mallory, 1, 1, hex"00"), "wrong proof");
        assertEq(dep.depositOf(mallory), 1 ether - PENALTY_WRONG, "wrong-proof penalty in full");
        assertTrue(_reveal(alice, 1, 1, p1), "seq 1 verified");
        _rollToEnd(2);
        vm.prank(carol);
        rollup.settleNoProof(2, mallory);
        assertEq(dep.depositOf(mallory), 1 ether - PENALTY_WRONG - PENALTY_NO_PROOF, "no-proof penalty in full");
        assertEq(dep.lockedOf(mallory), 0, "all settled");
        assertEq(dep.totalSlashed(), uint256(PENALTY_WRONG) + PENALTY_NO_PROOF, "both penalties slashed");

        // the withdrawal she got out was only ever the free part
        vm.roll(o + UNBONDING);
        uint256 before = mallory.balance;
        vm.prank(mallory);
        dep.withdraw();
        assertEq(mallory.balance, before + 0.5 ether, "only the free part left");
        _checkBooks();
    }

    /// Fuzzed: whatever the deposit, the penalties and the withdrawal attempts after the commit, the
    /// penalty is always taken in full.
    function testFuzz_attack_penaltyAlwaysCoveredInFull(uint96 extraRaw, uint96 wrongRaw, uint96 noProofRaw, uint96 takeRaw, bool reveal)
        public
    {
        uint128 wrong = uint128(bound(wrongRaw, 0, MIN_DEPOSIT));
        uint128 noProof = uint128(bound(noProofRaw, 0, MIN_DEPOSIT));
        rollup.setAmounts(MIN_DEPOSIT, REWARD, wrong, noProof);
        uint128 bond = wrong > noProof ? wrong : noProof;
        (uint64 init, uint64 fin) = _post(1);
        uint256 amount = MIN_DEPOSIT + bound(extraRaw, 0, 5 ether);
        _fundMiner(mallory, amount);
        _commit(mallory, init, fin, hex"01");
        uint256 take = bound(takeRaw, 1, amount);
        vm.prank(mallory);
        (bool ok,) = address(dep).call(abi.encodeCall(MinerDeposit.requestWithdrawal, (take)));
        assertEq(ok, take <= amount - bond, "only the free part");
        uint256 active = dep.depositOf(mallory);
        assertGe(active, bond, "the bond stays");
        uint256 penalty;
        if (reveal) {
            _rollToReveal(init);
            _reveal(mallory, init, fin, hex"02");
            penalty = wrong;
        } else {
            _rollToEnd(init);
            rollup.settleNoProof(init, mallory);
            penalty = noProof;
        }
        assertEq(dep.depositOf(mallory), active - penalty, "penalty in full");
        assertEq(dep.lockedOf(mallory), 0, "settled");
        assertEq(dep.totalSlashed(), penalty, "slashed");
        _checkBooks();
    }

    /// Top up the deposit after committing (at reveal time) to capture a larger share of the
    /// reward: the weight was fixed at commit.
    function test_attack_topUpAtRevealToCaptureReward() public {
        (uint64 init, uint64 fin) = _post(1);
        bytes memory pa = _proof(init, fin, alice);
        bytes memory pb = _proof(init, fin, bob);
        _commit(alice, init, fin, pa); // 2 ether at commit
        _commit(bob, init, fin, pb); // 6 ether at commit
        _rollToReveal(init);
        _fundMiner(alice, 1000 ether); // just before revealing
        assertTrue(_reveal(alice, init, fin, pa), "alice");
        assertTrue(_reveal(bob, init, fin, pb), "bob");
        assertEq(rollup.commitOf(init, alice).weight, 2 ether, "weight as of the commit");
        (,,, uint128 tw) = rollup.verification(init);
        assertEq(tw, 8 ether / 1 gwei, "total weight as of the commits");
        _rollToEnd(init);
        vm.prank(alice);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 2 / 8, "alice still 2/8");
        vm.prank(bob);
        assertEq(rollup.claimReward(init), uint256(REWARD) * 6 / 8, "bob still 6/8");
    }

    /// A junk commit is not free: without anyone acting its bond stays locked (not withdrawable,
    /// not usable for other commits) for ever; anyone settling it is paid for doing so.
    function test_attack_junkCommitCostsNothingWithoutThirdParty() public {
        (uint64 init, uint64 fin) = _post(1);
        _fundMiner(mallory, 1 ether);
        _commit(mallory, init, fin, hex"6a756e6b");
        bytes memory pa = _proof(init, fin, alice);
        _commit(alice, init, fin, pa);
        _rollToReveal(init);
        assertTrue(_reveal(alice, init, fin, pa), "honest proof");
        _rollToEnd(init);

        // nobody settles for a long time
        vm.roll(block.number + 100_000);
        assertEq(dep.lockedOf(mallory), BOND, "bond still locked");
        assertEq(dep.depositOf(mallory), 1 ether, "not slashed yet");
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0.5 ether, 1 ether));
        dep.requestWithdrawal(1 ether);
        // the locked half cannot back anything else either
        (uint64 init2, uint64 fin2) = _post(1);
        _post(1);
        _commit(mallory, init2, fin2, hex"01"); // uses the free half
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, BOND));
        rollup.submitProofHash(init2 + 1, init2 + 1, bytes32(uint256(2)));
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, 1));
        dep.requestWithdrawal(1);

        // a third party settles and is paid
        uint256 share = uint256(PENALTY_NO_PROOF) / 10;
        (uint256 budgetBefore,) = _budget(rollup);
        vm.prank(dave);
        rollup.settleNoProof(init, mallory);
        assertEq(dep.depositOf(mallory), 1 ether - PENALTY_NO_PROOF, "penalty taken");
        assertEq(dep.lockedOf(mallory), BOND, "only the second commit's bond left");
        assertEq(dep.rewardsOf(dave), share, "settler credited");
        (uint256 budgetAfter,) = _budget(rollup);
        assertEq(budgetAfter, budgetBefore + PENALTY_NO_PROOF - share, "rest to the rollup's budget");
        uint256 before = dave.balance;
        vm.prank(dave);
        dep.claimRewards();
        assertEq(dave.balance, before + share, "settler paid in ETH");
        _checkBooks();
    }

    /// Settling one's own junk commit instead of waiting for a third party costs the full penalty.
    function test_attack_selfSettleToKeepTheShare() public {
        (uint64 init, uint64 fin) = _post(1);
        _fundMiner(mallory, 1 ether);
        _commit(mallory, init, fin, hex"6a756e6b");
        _rollToEnd(init);
        vm.prank(mallory);
        rollup.settleNoProof(init, mallory);
        assertEq(dep.depositOf(mallory), 1 ether - PENALTY_NO_PROOF, "full penalty");
        assertEq(dep.rewardsOf(mallory), 0, "no share");
    }

    /// One deposit cannot back bonds beyond its size, across rollups sharing the MinerDeposit.
    function test_attack_oneDepositBackingSeveralRollups() public {
        ZkPowRollup r2 = _newRollup(0, 0, MIN_DEPOSIT, REWARD, PENALTY_WRONG, PENALTY_NO_PROOF);
        ZkPowRollup r3 = _newRollup(0, 0, MIN_DEPOSIT, REWARD, MIN_DEPOSIT, 0); // bond = 1 ether
        dep.registerRollup(address(r2));
        dep.registerRollup(address(r3));
        _post(1);
        _post(1);
        _postOn(r2, 1);
        _postOn(r2, 1);
        _postOn(r3, 1);
        _fundMiner(mallory, 1 ether);
        _commit(mallory, 1, 1, hex"01"); // 0.5 on rollup 1
        _commitOn(r2, mallory, 1, 1, hex"01"); // 0.5 on rollup 2
        assertEq(dep.lockedOf(mallory), 1 ether, "the whole deposit is locked");
        vm.startPrank(mallory);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, BOND));
        rollup.submitProofHash(2, 2, bytes32(uint256(1)));
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, BOND));
        r2.submitProofHash(2, 2, bytes32(uint256(1)));
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, MIN_DEPOSIT));
        r3.submitProofHash(1, 1, bytes32(uint256(1)));
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.InsufficientFreeDeposit.selector, 0, 1));
        dep.requestWithdrawal(1);
        vm.stopPrank();

        // both rollups take their penalties in full
        _rollToReveal(1);
        assertFalse(_reveal(mallory, 1, 1, hex"02"), "wrong on rollup 1");
        _rollToEndOn(r2, 1);
        vm.expectRevert(abi.encodeWithSelector(ZkPowRollup.NotSettleable.selector, 1, mallory));
        rollup.settleNoProof(1, mallory); // settled by the wrong reveal already
        r2.settleNoProof(1, mallory);
        assertEq(dep.depositOf(mallory), 1 ether - PENALTY_WRONG - PENALTY_NO_PROOF, "both penalties");
        assertEq(dep.lockedOf(mallory), 0, "all released");
        _checkBooks();
    }

    /// v1 let a penalty exceed the deposit (debt) while rewards were still credited. Now a penalty
    /// is always taken in full from a lock and a reward pays exactly the share due: no debt can
    /// arise, so there is none to dodge by claiming.
    function test_attack_claimRewardWhileInDebt() public {
        (uint64 s1, uint64 f1) = _post(1);
        (uint64 s2, uint64 f2) = _post(1);
        _fundMiner(mallory, 1 ether); // exactly two bonds
        bytes memory p1 = _proof(s1, f1, mallory);
        _commit(mallory, s1, f1, p1); // valid
        _commit(mallory, s2, f2, hex"6a756e6b"); // junk
        assertEq(dep.freeDepositOf(mallory), 0, "fully locked");
        _rollToReveal(s1);
        assertTrue(_reveal(mallory, s1, f1, p1), "valid on s1");
        _rollToReveal(s2);
        assertFalse(_reveal(mallory, s2, f2, hex"00"), "wrong on s2");
        assertEq(dep.depositOf(mallory), 1 ether - PENALTY_WRONG, "penalty taken in full");
        assertEq(dep.totalSlashed(), PENALTY_WRONG, "exactly the penalty");
        assertEq(dep.lockedOf(mallory), 0, "nothing outstanding");
        _rollToEnd(s1);
        vm.prank(mallory);
        assertEq(rollup.claimReward(s1), REWARD, "exactly the reward due (sole revealer)");
        uint256 before = mallory.balance;
        vm.prank(mallory);
        dep.claimRewards();
        assertEq(mallory.balance, before + REWARD, "paid exactly the reward");
        assertEq(dep.depositOf(mallory), 1 ether - PENALTY_WRONG, "deposit unchanged by the claim");
        // the miner's books: deposited = active + pending + slashed
        (uint256 pending,) = dep.pendingWithdrawalOf(mallory);
        assertEq(dep.depositOf(mallory) + pending + PENALTY_WRONG, 1 ether, "no shortfall anywhere");
        // there is no debt book any more
        (bool ok,) = address(dep).staticcall(abi.encodeWithSignature("debtOf(address)", mallory));
        assertFalse(ok, "no debtOf");
        // and a rollup cannot take more than the bond it locked
        vm.startPrank(address(rollup));
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.PenaltyAboveBond.selector, 1 ether, BOND));
        dep.slash(mallory, BOND, 1 ether, address(0), 0);
        vm.expectRevert(abi.encodeWithSelector(MinerDeposit.LockUnderflow.selector, 0, BOND));
        dep.slash(mallory, BOND, BOND, address(0), 0);
        vm.stopPrank();
        _checkBooks();
    }
}
