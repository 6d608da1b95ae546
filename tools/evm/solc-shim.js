#!/usr/bin/env node
// A native-looking `solc` in front of solc-js (the `solc` npm package pinned in
// package.json), so that forge uses the pinned compiler and never downloads one.
//
// Supported invocations (the subset forge and our Makefile use):
//   solc --version
//   solc [--base-path DIR] [--include-path DIR]... [--allow-paths A,B] --standard-json [FILE]
// The standard JSON input is read from FILE or stdin; the output JSON is
// written to stdout. Imports that are not in the input are resolved against
// the base path, the include paths and the current directory.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

function nativeVersion() {
  // solc-js reports e.g. "0.8.30+commit.73712a01.Emscripten.clang"; forge parses
  // the native format "0.8.30+commit.73712a01.Linux.g++".
  const v = solc.version();
  const m = /^(\d+\.\d+\.\d+)(?:\+commit\.([0-9a-f]+))?/.exec(v);
  if (!m) return v;
  return `${m[1]}+commit.${m[2] || '00000000'}.Linux.g++`;
}

function fail(msg, code) {
  process.stderr.write(`solc-shim: ${msg}\n`);
  process.exit(code === undefined ? 2 : code);
}

const args = process.argv.slice(2);
let standardJson = false;
let inputFile = null;
let basePath = null;
const includePaths = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const takeValue = () => {
    if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
    if (i + 1 >= args.length) fail(`missing value for ${a}`);
    return args[++i];
  };
  if (a === '--version' || a === '-v') {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${nativeVersion()}\n`);
    process.exit(0);
  } else if (a === '--help' || a === '-h') {
    process.stdout.write('usage: solc --version | solc [--base-path D] [--include-path D] [--allow-paths P] --standard-json [FILE]\n');
    process.exit(0);
  } else if (a === '--standard-json') {
    standardJson = true;
  } else if (a === '--base-path' || a.startsWith('--base-path=')) {
    basePath = takeValue();
  } else if (a === '--include-path' || a.startsWith('--include-path=')) {
    includePaths.push(takeValue());
  } else if (a === '--allow-paths' || a.startsWith('--allow-paths=')) {
    takeValue(); // solc-js reads files only through the callback below
  } else if (a === '--pretty-json' || a === '--no-color' || a === '--color') {
    // output formatting flags: accepted and ignored
  } else if (a.startsWith('-')) {
    fail(`unsupported option ${a} (this shim only implements --version and --standard-json)`);
  } else {
    if (inputFile !== null) fail('only one standard JSON input file is supported');
    inputFile = a;
  }
}
if (!standardJson) fail('only --standard-json mode is supported');

function findImport(p) {
  const roots = [basePath, ...includePaths, process.cwd()].filter((r) => r !== null);
  const candidates = path.isAbsolute(p) ? [p] : roots.map((r) => path.resolve(r, p));
  for (const c of candidates) {
    try {
      return { contents: fs.readFileSync(c, 'utf8') };
    } catch (_) {
      // try the next root
    }
  }
  return { error: `File not found: ${p}` };
}

let input;
try {
  input = fs.readFileSync(inputFile === null ? 0 : inputFile, 'utf8');
} catch (e) {
  fail(`cannot read input: ${e.message}`);
}
const output = solc.compile(input, { import: findImport });
process.stdout.write(output);
process.stdout.write('\n');
