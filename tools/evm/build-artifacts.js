#!/usr/bin/env node
// Compiles contracts/src with the pinned solc (through the native-looking shim, bin/solc) and
// writes one artifact per deployable contract:
//   <outDir>/<Name>.json = {"abi": [...], "bytecode": "0x..", "deployedBytecode": "0x.."}
// The compiler settings are the ones in contracts/foundry.toml (optimizer 200 runs, evm
// "prague", no metadata hash, no CBOR metadata), so the output is deterministic: the same
// sources give byte-identical files on every machine.
//
// usage: node build-artifacts.js <contractsDir> <outDir>
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const CONTRACTS = ['Groth16BatchVerifier', 'MinerDeposit', 'ZkPowRollup'];

function die(msg) {
  process.stderr.write(`build-artifacts: ${msg}\n`);
  process.exit(1);
}

const [contractsDir, outDir] = process.argv.slice(2);
if (!contractsDir || !outDir) die('usage: node build-artifacts.js <contractsDir> <outDir>');
const root = path.resolve(contractsDir);
const srcDir = path.join(root, 'src');
if (!fs.existsSync(srcDir)) die(`no ${srcDir}`);

function listSol(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listSol(p));
    else if (e.name.endsWith('.sol')) out.push(p);
  }
  return out;
}

const sources = {};
for (const file of listSol(srcDir)) {
  const key = path.relative(root, file).split(path.sep).join('/');
  sources[key] = { content: fs.readFileSync(file, 'utf8') };
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'prague',
    viaIR: false,
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

const solc = path.join(__dirname, 'bin', 'solc');
let output;
try {
  output = JSON.parse(
    execFileSync(solc, ['--base-path', root, '--standard-json'], {
      input: JSON.stringify(input),
      maxBuffer: 256 * 1024 * 1024,
    }).toString('utf8'),
  );
} catch (e) {
  die(`solc failed: ${e.message}`);
}

const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) {
  process.stderr.write(`${e.formattedMessage || e.message}\n`);
}
if (errors.length) die(`${errors.length} compiler error(s)`);

fs.mkdirSync(outDir, { recursive: true });
for (const name of CONTRACTS) {
  const key = `src/${name}.sol`;
  const c = output.contracts && output.contracts[key] && output.contracts[key][name];
  if (!c) die(`no output for ${key}:${name}`);
  const artifact = {
    abi: c.abi,
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
  };
  if (artifact.bytecode.length < 4) die(`${name}: empty bytecode`);
  fs.writeFileSync(path.join(outDir, `${name}.json`), `${JSON.stringify(artifact, null, 2)}\n`);
  process.stdout.write(`wrote ${path.join(outDir, `${name}.json`)}\n`);
}
