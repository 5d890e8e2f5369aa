// The token's test suite, written as for Hardhat: mocha, ethers v6, one deployment restored
// before each test with loadFixture (evm_snapshot / evm_revert across the blocks the previous
// test mined), balances, events, allowances, reverts with reasons and custom errors.
const assert = require("node:assert/strict");
const { AbiCoder, dataSlice } = require("ethers");
const { ethers } = require("./setup");
const { loadFixture } = require("./fixtures");

const SUPPLY = 1_000_000n * 10n ** 18n;
const ZERO = "0x" + "00".repeat(20);

let deployments = 0;

async function deployTokenFixture() {
  deployments += 1;
  const [owner, alice, bob] = await ethers.getSigners();
  const token = await ethers.deployContract("Token", ["Lianxin Token", "LXT", SUPPLY]);
  await token.waitForDeployment();
  const deployedAt = await ethers.provider.getBlockNumber();
  return { token, owner, alice, bob, deployedAt };
}

async function approvedFixture() {
  const deployed = await loadFixture(deployTokenFixture);
  const { token, alice } = deployed;
  await (await token.approve(alice.address, 100n)).wait();
  return deployed;
}

async function mined(tx) {
  return (await tx).wait();
}

describe("Token", function () {
  let token;
  let owner;
  let alice;
  let bob;

  beforeEach(async function () {
    ({ token, owner, alice, bob } = await loadFixture(deployTokenFixture));
  });

  describe("Deployment", function () {
    it("sets the name, symbol and owner", async function () {
      assert.equal(await token.name(), "Lianxin Token");
      assert.equal(await token.symbol(), "LXT");
      assert.equal(await token.decimals(), 18n);
      assert.equal(await token.owner(), owner.address);
    });

    it("assigns the total supply to the owner", async function () {
      assert.equal(await token.totalSupply(), SUPPLY);
      assert.equal(await token.balanceOf(owner.address), SUPPLY);
    });

    it("is found at the address ethers computed", async function () {
      const receipt = await token.deploymentTransaction().wait();
      assert.equal(receipt.contractAddress, await token.getAddress());
      assert.notEqual(await ethers.provider.getCode(await token.getAddress()), "0x");
    });
  });

  describe("Transfers", function () {
    it("moves tokens between accounts", async function () {
      await mined(token.transfer(alice.address, 50n));
      assert.equal(await token.balanceOf(alice.address), 50n);
      await mined(token.connect(alice).transfer(bob.address, 20n));
      assert.equal(await token.balanceOf(alice.address), 30n);
      assert.equal(await token.balanceOf(bob.address), 20n);
      assert.equal(await token.balanceOf(owner.address), SUPPLY - 50n);
    });

    it("emits Transfer", async function () {
      const receipt = await mined(token.transfer(alice.address, 7n));
      const events = receipt.logs.map((log) => token.interface.parseLog(log));
      assert.equal(events.length, 1);
      assert.equal(events[0].name, "Transfer");
      assert.deepEqual(
        [events[0].args.from, events[0].args.to, events[0].args.value],
        [owner.address, alice.address, 7n],
      );
      const found = await token.queryFilter(token.filters.Transfer(owner.address), receipt.blockNumber);
      assert.equal(found.length, 1);
      assert.equal(found[0].transactionHash, receipt.hash);
    });

    it("reverts when the sender lacks the balance, and changes nothing", async function () {
      await assert.rejects(token.connect(alice).transfer(owner.address, 1n), (error) => {
        assert.equal(error.code, "CALL_EXCEPTION");
        assert.equal(error.reason, "ERC20: transfer amount exceeds balance");
        return true;
      });
      assert.equal(await token.balanceOf(owner.address), SUPPLY);
    });

    it("rejects the zero address", async function () {
      await assert.rejects(token.transfer(ZERO, 1n), /zero address/);
    });
  });

  describe("Allowances", function () {
    it("lets a spender move an approved amount once", async function () {
      const approval = await mined(token.approve(alice.address, 100n));
      assert.equal(token.interface.parseLog(approval.logs[0]).name, "Approval");
      assert.equal(await token.allowance(owner.address, alice.address), 100n);
      await mined(token.connect(alice).transferFrom(owner.address, bob.address, 60n));
      assert.equal(await token.balanceOf(bob.address), 60n);
      assert.equal(await token.allowance(owner.address, alice.address), 40n);
      await assert.rejects(
        token.connect(alice).transferFrom(owner.address, bob.address, 41n),
        /insufficient allowance/,
      );
    });

    it("starts from a fixture built on another fixture", async function () {
      ({ token, owner, alice, bob } = await loadFixture(approvedFixture));
      assert.equal(await token.allowance(owner.address, alice.address), 100n);
      await mined(token.connect(alice).transferFrom(owner.address, bob.address, 100n));
      ({ token } = await loadFixture(approvedFixture));
      assert.equal(await token.allowance(owner.address, alice.address), 100n);
      assert.equal(await token.balanceOf(bob.address), 0n);
      // And the plain deployment underneath it, without the approval.
      ({ token } = await loadFixture(deployTokenFixture));
      assert.equal(await token.allowance(owner.address, alice.address), 0n);
    });
  });

  describe("Minting", function () {
    it("lets the owner mint", async function () {
      await mined(token.mint(bob.address, 5n));
      assert.equal(await token.totalSupply(), SUPPLY + 5n);
    });

    it("refuses others with the custom error", async function () {
      await assert.rejects(token.connect(alice).mint(alice.address, 5n), (error) => {
        assert.equal(error.code, "CALL_EXCEPTION");
        const decoded = token.interface.parseError(error.data);
        assert.equal(decoded.name, "NotOwner");
        assert.equal(decoded.args[0], alice.address);
        return true;
      });
    });

    it("estimates gas and reports fees like any EVM node", async function () {
      const gas = await token.mint.estimateGas(bob.address, 5n);
      assert.ok(gas > 21000n);
      const fees = await ethers.provider.getFeeData();
      assert.ok(fees.maxFeePerGas > 0n);
    });
  });

  describe("Reverts as Hardhat's matchers read them", function () {
    it("carries the reason string from eth_estimateGas and eth_call", async function () {
      const reason = "ERC20: transfer amount exceeds balance";
      for (const attempt of [
        () => token.connect(alice).transfer.estimateGas(owner.address, 1n),
        () => token.connect(alice).transfer.staticCall(owner.address, 1n),
      ]) {
        await assert.rejects(attempt(), (error) => {
          assert.equal(error.code, "CALL_EXCEPTION");
          assert.equal(error.reason, reason);
          // revertedWith decodes Error(string) from the revert data itself.
          assert.equal(dataSlice(error.data, 0, 4), "0x08c379a0");
          assert.equal(AbiCoder.defaultAbiCoder().decode(["string"], dataSlice(error.data, 4))[0], reason);
          return true;
        });
      }
    });

    it("carries a custom error with its arguments from eth_estimateGas and eth_call", async function () {
      for (const attempt of [
        () => token.connect(bob).mint.estimateGas(bob.address, 1n),
        () => token.connect(bob).mint.staticCall(bob.address, 1n),
      ]) {
        await assert.rejects(attempt(), (error) => {
          assert.equal(error.code, "CALL_EXCEPTION");
          // revertedWithCustomError decodes the revert data with the contract's interface.
          const decoded = token.interface.parseError(error.data);
          assert.equal(decoded.name, "NotOwner");
          assert.deepEqual([...decoded.args], [bob.address]);
          return true;
        });
      }
    });

    it("answers the chain id the same way in eth_chainId and net_version", async function () {
      const network = await ethers.provider.getNetwork();
      assert.equal(network.chainId, BigInt(await ethers.provider.send("net_version", [])));
      assert.equal(network.chainId, BigInt(await ethers.provider.send("eth_chainId", [])));
    });
  });

  describe("Fixtures across blocks", function () {
    it("goes back over the blocks a test mined", async function () {
      const { deployedAt } = await loadFixture(deployTokenFixture);
      assert.equal(await ethers.provider.getBlockNumber(), deployedAt);
      const sent = [];
      for (const to of [alice, bob, alice]) {
        sent.push(await mined(token.transfer(to.address, 10n)));
      }
      await ethers.provider.send("evm_mine", []);
      assert.equal(await ethers.provider.getBlockNumber(), deployedAt + 4);

      ({ token } = await loadFixture(deployTokenFixture));

      assert.equal(await ethers.provider.getBlockNumber(), deployedAt);
      assert.equal(await token.balanceOf(owner.address), SUPPLY);
      assert.equal(await token.balanceOf(alice.address), 0n);
      for (const receipt of sent) {
        assert.equal(await ethers.provider.getTransactionReceipt(receipt.hash), null);
        assert.equal(await ethers.provider.getBlock(receipt.blockHash), null);
      }
      assert.deepEqual(await token.queryFilter(token.filters.Transfer(owner.address), 0), []);
      // The next block takes the discarded height, as another block.
      const again = await mined(token.transfer(bob.address, 1n));
      assert.equal(again.blockNumber, deployedAt + 1);
      assert.notEqual(again.blockHash, sent[0].blockHash);
    });

    it("reads state at an earlier block tag after a revert", async function () {
      const { deployedAt } = await loadFixture(deployTokenFixture);
      const moved = await mined(token.transfer(alice.address, 25n));
      assert.equal(await token.balanceOf(alice.address, { blockTag: moved.blockNumber }), 25n);
      ({ token } = await loadFixture(deployTokenFixture));
      assert.equal(await token.balanceOf(alice.address, { blockTag: deployedAt }), 0n);
      assert.equal(await token.balanceOf(owner.address, { blockTag: "latest" }), SUPPLY);
      await assert.rejects(token.balanceOf(alice.address, { blockTag: moved.blockNumber }));
    });

    it("brings the block clock back with the chain", async function () {
      const { deployedAt } = await loadFixture(deployTokenFixture);
      const start = (await ethers.provider.getBlock(deployedAt)).timestamp;
      const later = start + 30 * 24 * 3600;
      await ethers.provider.send("evm_mine", [later]);
      assert.equal((await ethers.provider.getBlock("latest")).timestamp, later);
      await ethers.provider.send("evm_increaseTime", [3600]);

      await loadFixture(deployTokenFixture);

      assert.equal((await ethers.provider.getBlock("latest")).timestamp, start);
      await ethers.provider.send("evm_mine", []);
      assert.ok((await ethers.provider.getBlock("latest")).timestamp < later);
    });

    it("deploys once for the whole suite", async function () {
      assert.equal(deployments, 1);
    });
  });
});
