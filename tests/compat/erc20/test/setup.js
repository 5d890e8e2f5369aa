// What a Hardhat project's tests get from `require("hardhat")`, for any JSON-RPC node:
// `ethers.getSigners()` (the node's accounts) and `ethers.deployContract(name, args)`
// (contracts/ compiled with the pinned solc). The node is RPC_URL.
const fs = require("node:fs");
const path = require("node:path");
const solc = require("solc");
const { ContractFactory, JsonRpcProvider } = require("ethers");

// cacheTimeout -1: ethers' JsonRpcProvider otherwise answers a repeated read (the block
// number, the latest block) from a 250 ms cache, which would serve the chain as it was
// before an evm_revert; Hardhat's own provider (hre.ethers) does not cache either.
const provider = new JsonRpcProvider(process.env.RPC_URL || "http://127.0.0.1:8545", undefined, {
  pollingInterval: 50,
  cacheTimeout: -1,
});

let compiled = null;

function artifacts() {
  if (compiled !== null) return compiled;
  const directory = path.join(__dirname, "..", "contracts");
  const sources = {};
  for (const file of fs.readdirSync(directory).filter((f) => f.endsWith(".sol"))) {
    sources[file] = { content: fs.readFileSync(path.join(directory, file), "utf8") };
  }
  const input = {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  compiled = {};
  for (const file of Object.keys(output.contracts)) {
    for (const [name, contract] of Object.entries(output.contracts[file])) {
      compiled[name] = { abi: contract.abi, bytecode: "0x" + contract.evm.bytecode.object };
    }
  }
  return compiled;
}

const ethers = {
  provider,
  async getSigners() {
    return provider.listAccounts();
  },
  async getContractFactory(name, signer) {
    const { abi, bytecode } = artifacts()[name];
    return new ContractFactory(abi, bytecode, signer || (await provider.getSigner(0)));
  },
  async deployContract(name, args = [], signer = undefined) {
    const factory = await ethers.getContractFactory(name, signer);
    return factory.deploy(...args);
  },
};

module.exports = { ethers };
