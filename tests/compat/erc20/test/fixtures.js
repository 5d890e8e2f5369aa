// `loadFixture` and `takeSnapshot` as @nomicfoundation/hardhat-network-helpers implement them,
// over any JSON-RPC node that has evm_snapshot / evm_revert (that package needs a Hardhat
// runtime to find its provider; the calls are the same).
//
// The first loadFixture(fixture) runs the fixture, which deploys and mines blocks, and takes a
// snapshot after it; every later call reverts the chain to that snapshot, across the blocks
// the previous test mined, takes it again (a revert uses a snapshot up), and returns the
// fixture's first result: the same contracts at the same addresses, in the same state.
const { ethers } = require("./setup");

async function takeSnapshot() {
  let snapshotId = await ethers.provider.send("evm_snapshot", []);
  return {
    get snapshotId() {
      return snapshotId;
    },
    async restore() {
      const reverted = await ethers.provider.send("evm_revert", [snapshotId]);
      if (reverted !== true) {
        throw new Error(`InvalidSnapshotError: evm_revert(${snapshotId}) answered ${reverted}`);
      }
      // A snapshot is used up by the revert: take it again so that it can be restored again.
      snapshotId = await ethers.provider.send("evm_snapshot", []);
    },
  };
}

let snapshots = [];

async function loadFixture(fixture) {
  if (fixture.name === "") {
    throw new Error("FixtureAnonymousFunctionError: loadFixture needs a named function");
  }
  const known = snapshots.find((s) => s.fixture === fixture);
  if (known !== undefined) {
    const restored = BigInt(known.restorer.snapshotId);
    await known.restorer.restore();
    // Reverting to a snapshot discards every later one on the node: forget the fixtures
    // taken after it here too (they run again when next loaded).
    snapshots = snapshots.filter(
      (s) => s === known || BigInt(s.restorer.snapshotId) < restored,
    );
    return known.data;
  }
  const data = await fixture();
  const restorer = await takeSnapshot();
  snapshots.push({ restorer, fixture, data });
  return data;
}

module.exports = { loadFixture, takeSnapshot };
