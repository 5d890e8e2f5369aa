// An application's flow with ethers v6, unchanged, against a dev chain's node:
//   node ethers_flow.mjs <rpc url> <Anchor artifact> <SM2 raw tx> <its hash> <its sender>
// Deploys with the node's first account (JsonRpcSigner), transacts, reads events, the
// transaction, the block with its transactions and the fee data, signs a message and typed
// data, and broadcasts a raw transaction signed with SM2 by the Python SDK. Prints a JSON
// summary on success; any failed assertion exits non-zero.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ContractFactory, JsonRpcProvider, getCreateAddress } from "ethers";

const [url, artifactPath, rawTx, rawHash, rawSender] = process.argv.slice(2);
const artifact = JSON.parse(readFileSync(artifactPath, "utf8"));
const provider = new JsonRpcProvider(url, undefined, { pollingInterval: 50 });
const summary = {};

const accounts = await provider.listAccounts();
assert.ok(accounts.length >= 3, "the dev node holds its accounts");
const signer = accounts[0];

// Deploy: ethers computes the address from the transaction's from and nonce.
const factory = new ContractFactory(artifact.abi, artifact.bytecode, signer);
const anchor = await factory.deploy();
await anchor.waitForDeployment();
const address = await anchor.getAddress();
const deployment = await anchor.deploymentTransaction().wait();
assert.equal(deployment.status, 1);
assert.equal(deployment.contractAddress, address);
assert.equal(getCreateAddress(anchor.deploymentTransaction()), address);
assert.notEqual(await provider.getCode(address), "0x");
summary.contract = address;

// Transact and read the event back.
const root = "0x" + "ab".repeat(32);
const sent = await anchor.anchor(root);
const receipt = await sent.wait();
assert.equal(receipt.status, 1);
assert.equal(receipt.fee, receipt.gasUsed * receipt.gasPrice);
const events = await anchor.queryFilter(anchor.filters.Anchored(root), receipt.blockNumber);
assert.equal(events.length, 1);
assert.equal(events[0].args.root, root);
assert.equal(events[0].args.by, signer.address);
assert.equal(events[0].args.count, 1n);
assert.equal(await anchor.total(), 1n);
const parsed = receipt.logs.map((log) => anchor.interface.parseLog(log));
assert.equal(parsed[0].name, "Anchored");

// The transaction and the block with its transactions, as ethers parses them.
const fetched = await provider.getTransaction(sent.hash);
assert.equal(fetched.hash, sent.hash);
assert.equal(fetched.from, signer.address);
assert.equal(fetched.to, address);
assert.equal(fetched.nonce, anchor.deploymentTransaction().nonce + 1);
assert.equal(fetched.blockNumber, receipt.blockNumber);
assert.equal(await provider.getTransactionCount(signer.address), fetched.nonce + 1);
const block = await provider.getBlock(receipt.blockNumber, true);
assert.equal(block.number, receipt.blockNumber);
assert.ok(block.prefetchedTransactions.some((tx) => tx.hash === sent.hash));
const byIndex = await block.getTransaction(receipt.index);
assert.equal(byIndex.hash, sent.hash);
const latest = await provider.getBlock("latest", true);
assert.ok(latest.number >= receipt.blockNumber);
summary.blockTransactions = block.prefetchedTransactions.length;

// Fee data: non-null, so that ethers can fill in EIP-1559 fields.
const fees = await provider.getFeeData();
assert.ok(fees.gasPrice > 0n);
assert.ok(fees.maxFeePerGas > 0n);
assert.notEqual(fees.maxPriorityFeePerGas, null);
summary.fees = { gasPrice: String(fees.gasPrice), maxFeePerGas: String(fees.maxFeePerGas) };

// A plain transfer from another account, with the fee fields ethers fills in.
const other = accounts[1];
const before = await provider.getBalance(accounts[2].address);
const transfer = await other.sendTransaction({ to: accounts[2].address, value: 12345n });
const transferReceipt = await transfer.wait();
// Read at the receipt's block: ethers shares identical requests made within 250 ms
// (cacheTimeout), so a getBalance('latest') repeated that soon answers the earlier reply
// without asking the node. Against a node that confirms within 250 ms, as this one does,
// reading 'latest' again would test ethers' cache, not the chain.
assert.equal(
  await provider.getBalance(accounts[2].address, transferReceipt.blockNumber),
  before + 12345n,
);
assert.equal(transferReceipt.fee, 0n);

// Signatures by the node (SM2; not recoverable with ecrecover).
summary.messageSignature = await signer.signMessage("hello");
assert.match(summary.messageSignature, /^0x30[0-9a-f]+$/);
summary.typedDataSignature = await signer.signTypedData(
  { name: "lianxin", version: "1", chainId: (await provider.getNetwork()).chainId },
  { Mail: [{ name: "contents", type: "string" }] },
  { contents: "hello" },
);
assert.match(summary.typedDataSignature, /^0x30[0-9a-f]+$/);

// A raw transaction signed with SM2 elsewhere: ethers' broadcastTransaction sends it, then
// parses the bytes as an Ethereum transaction and compares Keccak hashes, which an SM2
// transaction cannot satisfy; the transaction lands all the same and is read by its hash.
await assert.rejects(provider.broadcastTransaction(rawTx), { argument: "r" });
// ethers' waitForTransaction(hash, 1) is not used: it compares the receipt with a block number
// that broadcastTransaction read (and ethers cached) before the transaction landed, then
// waits for a next block, which a dev chain with no more transactions does not make. An
// application polls for the receipt, as here.
let landed = null;
for (const deadline = Date.now() + 30_000; landed === null && Date.now() < deadline; ) {
  landed = await provider.getTransactionReceipt(rawHash);
  if (landed === null) await new Promise((resolve) => setTimeout(resolve, 100));
}
assert.notEqual(landed, null, "the SM2 transaction lands");
assert.equal(landed.status, 1);
const sm2Tx = await provider.getTransaction(rawHash);
assert.equal(sm2Tx.from.toLowerCase(), rawSender.toLowerCase());
assert.equal(sm2Tx.blockNumber, landed.blockNumber);
const raw = await provider.send("eth_getRawTransactionByHash", [rawHash]);
assert.equal(raw, rawTx);
summary.sm2Transaction = { block: landed.blockNumber, nonce: sm2Tx.nonce };

console.log(JSON.stringify(summary));
