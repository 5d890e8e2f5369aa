// The token's test suite, written as for Hardhat: mocha, ethers v6, a fresh deployment per
// test (beforeEach), balances, events, allowances, reverts with reasons and custom errors.
const assert = require("node:assert/strict");
const { ethers } = require("./setup");

const SUPPLY = 1_000_000n * 10n ** 18n;

describe("Token", function () {
  let token;
  let owner;
  let alice;
  let bob;

  beforeEach(async function () {
    [owner, alice, bob] = await ethers.getSigners();
    token = await ethers.deployContract("Token", ["Lianxin Token", "LXT", SUPPLY]);
    await token.waitForDeployment();
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
      await (await token.transfer(alice.address, 50n)).wait();
      assert.equal(await token.balanceOf(alice.address), 50n);
      await (await token.connect(alice).transfer(bob.address, 20n)).wait();
      assert.equal(await token.balanceOf(alice.address), 30n);
      assert.equal(await token.balanceOf(bob.address), 20n);
      assert.equal(await token.balanceOf(owner.address), SUPPLY - 50n);
    });

    it("emits Transfer", async function () {
      const receipt = await (await token.transfer(alice.address, 7n)).wait();
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
      await assert.rejects(token.transfer("0x" + "00".repeat(20), 1n), /zero address/);
    });
  });

  describe("Allowances", function () {
    it("lets a spender move an approved amount once", async function () {
      const approval = await (await token.approve(alice.address, 100n)).wait();
      assert.equal(token.interface.parseLog(approval.logs[0]).name, "Approval");
      assert.equal(await token.allowance(owner.address, alice.address), 100n);
      await (await token.connect(alice).transferFrom(owner.address, bob.address, 60n)).wait();
      assert.equal(await token.balanceOf(bob.address), 60n);
      assert.equal(await token.allowance(owner.address, alice.address), 40n);
      await assert.rejects(
        token.connect(alice).transferFrom(owner.address, bob.address, 41n),
        /insufficient allowance/,
      );
    });
  });

  describe("Minting", function () {
    it("lets the owner mint", async function () {
      await (await token.mint(bob.address, 5n)).wait();
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
});
