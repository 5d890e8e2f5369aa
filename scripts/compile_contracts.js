#!/usr/bin/env node
// Compile contracts/src/*.sol with the pinned solc (package.json) into deterministic JSON
// artifacts in contracts/artifacts/, one file per contract: keys sorted, two-space indent,
// trailing newline, so the committed artifacts can be compared byte for byte.
//
//   node scripts/compile_contracts.js            write contracts/artifacts/*.json
//   node scripts/compile_contracts.js --check    exit 1 if the committed artifacts differ
//   node scripts/compile_contracts.js --out DIR  write the artifacts into DIR instead
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const ROOT = path.resolve(__dirname, '..');
const SOURCE_DIR = path.join(ROOT, 'contracts', 'src');
const ARTIFACT_DIR = path.join(ROOT, 'contracts', 'artifacts');

// Fixed compiler settings. "cancun" matches the EVM fork that chain/execution.py runs
// (py-evm CancunVM); changing either side means changing both.
const EVM_VERSION = 'cancun';
const OPTIMIZER = { enabled: true, runs: 200 };
const EXPECTED_COMPILER = '0.8.28';

function sortKeys(value) {
  if (Array.isArray(value)) {
    return value.map(sortKeys);
  }
  if (value !== null && typeof value === 'object') {
    const sorted = {};
    for (const key of Object.keys(value).sort()) {
      sorted[key] = sortKeys(value[key]);
    }
    return sorted;
  }
  return value;
}

function compile() {
  const files = fs.readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.sol')).sort();
  const sources = {};
  for (const file of files) {
    sources[file] = { content: fs.readFileSync(path.join(SOURCE_DIR, file), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: OPTIMIZER,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const message of output.errors || []) {
    process.stderr.write(message.formattedMessage + '\n');
  }
  if (errors.length > 0) {
    throw new Error(`solc reported ${errors.length} error(s)`);
  }
  const version = solc.version();
  if (!version.startsWith(EXPECTED_COMPILER + '+')) {
    throw new Error(`expected solc ${EXPECTED_COMPILER}, found ${version}`);
  }
  const artifacts = {};
  for (const file of files) {
    for (const [name, contract] of Object.entries(output.contracts[file] || {})) {
      if (artifacts[name] !== undefined) {
        throw new Error(`contract name ${name} defined twice`);
      }
      const artifact = sortKeys({
        abi: contract.abi,
        bytecode: '0x' + contract.evm.bytecode.object,
        compiler: { evmVersion: EVM_VERSION, optimizer: OPTIMIZER, version },
        deployedBytecode: '0x' + contract.evm.deployedBytecode.object,
        name,
        source: `contracts/src/${file}`,
      });
      artifacts[name] = JSON.stringify(artifact, null, 2) + '\n';
    }
  }
  return artifacts;
}

function main(argv) {
  const check = argv.includes('--check');
  const outIndex = argv.indexOf('--out');
  const outDir = outIndex >= 0 ? path.resolve(argv[outIndex + 1]) : ARTIFACT_DIR;
  const artifacts = compile();
  if (check) {
    const expected = new Set(Object.keys(artifacts).map((n) => `${n}.json`));
    const present = fs.existsSync(ARTIFACT_DIR)
      ? fs.readdirSync(ARTIFACT_DIR).filter((f) => f.endsWith('.json'))
      : [];
    const problems = [];
    for (const [name, text] of Object.entries(artifacts)) {
      const file = path.join(ARTIFACT_DIR, `${name}.json`);
      if (!fs.existsSync(file)) {
        problems.push(`missing ${name}.json`);
      } else if (fs.readFileSync(file, 'utf8') !== text) {
        problems.push(`${name}.json differs from a fresh compile`);
      }
    }
    for (const file of present) {
      if (!expected.has(file)) {
        problems.push(`${file} has no source`);
      }
    }
    if (problems.length > 0) {
      process.stderr.write(problems.join('\n') + '\nrun: node scripts/compile_contracts.js\n');
      return 1;
    }
    process.stdout.write(`${Object.keys(artifacts).length} artifacts up to date\n`);
    return 0;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, text] of Object.entries(artifacts)) {
    fs.writeFileSync(path.join(outDir, `${name}.json`), text);
  }
  process.stdout.write(`wrote ${Object.keys(artifacts).length} artifacts to ${outDir}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
