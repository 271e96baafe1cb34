#!/usr/bin/env node
// Reproducible build of the adjudicator contracts.
//
//   node adjudicator/compile.js          compile and write adjudicator/build/<Contract>.json
//   node adjudicator/compile.js --check  compile in memory; exit 1 if any committed artifact differs
//
// One standard-JSON input holds every source under adjudicator/contracts/ (the adjudicator and the
// test-only contracts) plus every OpenZeppelin file they import, read from node_modules. The set is
// always the same, so the bytecode does not depend on what else happens to be compiled.
// The compiler is the pinned npm `solc` driven through its JS API (never the solcjs CLI).
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const ROOT = path.resolve(__dirname, '..');
const CONTRACTS_DIR = path.join(__dirname, 'contracts');
const BUILD_DIR = path.join(__dirname, 'build');
const NODE_MODULES = path.join(ROOT, 'node_modules');
const EXPECTED_SOLC = '0.8.37';
const VERBOSE = process.argv.includes('--verbose');

// Chosen by measured gas (see docs/PROTOCOL.md section 8 / the report in the build notes):
// viaIR with runs=1000000 measured 2-5k gas cheaper per operation than the legacy pipeline (runs=1e6)
// and than viaIR runs=200; the runtime code stays at ~16 KB (limit 24 KB). A compile takes ~12 s.
const SETTINGS = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 1000000 },
  viaIR: true,
  metadata: { bytecodeHash: 'ipfs' },
  outputSelection: {
    '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers', 'metadata'] },
  },
};

function fail(msg) {
  process.stderr.write(`compile.js: ${msg}\n`);
  process.exitCode = 1;
}

function walk(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full));
    else if (entry.name.endsWith('.sol')) out.push(full);
  }
  return out;
}

// Source unit name -> file on disk. Our files are "contracts/..."; packages come from node_modules.
function resolveFile(unit) {
  if (unit.startsWith('contracts/')) return path.join(__dirname, unit);
  const file = path.join(NODE_MODULES, unit);
  if (!file.startsWith(NODE_MODULES + path.sep)) throw new Error(`import escapes node_modules: ${unit}`);
  return file;
}

const IMPORT_RE = /^\s*import\s+(?:[^;]*?\bfrom\s+)?["']([^"']+)["']\s*;/gm;

function collectSources() {
  const sources = {};
  const queue = walk(CONTRACTS_DIR).map((f) => 'contracts/' + path.relative(CONTRACTS_DIR, f).split(path.sep).join('/'));
  while (queue.length) {
    const unit = queue.shift();
    if (sources[unit]) continue;
    const file = resolveFile(unit);
    if (!fs.existsSync(file)) throw new Error(`cannot find source ${unit} (${file})`);
    const content = fs.readFileSync(file, 'utf8');
    sources[unit] = { content };
    for (const m of content.matchAll(IMPORT_RE)) {
      const spec = m[1];
      const target = spec.startsWith('.') ? path.posix.normalize(path.posix.join(path.posix.dirname(unit), spec)) : spec;
      if (!sources[target]) queue.push(target);
    }
  }
  const sorted = {};
  for (const k of Object.keys(sources).sort()) sorted[k] = sources[k];
  return sorted;
}

function sha256(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function build() {
  const solc = require(path.join(NODE_MODULES, 'solc'));
  const version = solc.version();
  if (!version.startsWith(EXPECTED_SOLC + '+')) throw new Error(`solc ${version} found, ${EXPECTED_SOLC} pinned`);
  const sources = collectSources();
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const missing = (p) => ({ error: `import not pre-collected: ${p}` }); // fail loudly, never read silently
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: missing }));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  const warnings = (output.errors || []).filter((e) => e.severity !== 'error');
  const ours = (w) => w.sourceLocation && w.sourceLocation.file.startsWith('contracts/');
  for (const w of warnings.filter((w) => VERBOSE || ours(w) || !w.sourceLocation)) {
    process.stderr.write(w.formattedMessage || w.message);
  }
  const hidden = warnings.filter((w) => !(VERBOSE || ours(w) || !w.sourceLocation)).length;
  if (hidden) process.stderr.write(`compile.js: ${hidden} warning(s) in dependencies not shown (--verbose shows them)\n`);
  if (errors.length) {
    for (const e of errors) process.stderr.write(e.formattedMessage || e.message);
    throw new Error(`${errors.length} compiler error(s)`);
  }
  const artifacts = {};
  for (const unit of Object.keys(output.contracts).sort()) {
    if (!unit.startsWith('contracts/')) continue;
    for (const name of Object.keys(output.contracts[unit]).sort()) {
      const c = output.contracts[unit][name];
      if (!c.evm.bytecode.object) continue; // interfaces, abstract contracts
      if (new RegExp(`\\blibrary\\s+${name}\\b`).test(sources[unit].content)) continue; // inlined libraries
      if (artifacts[name]) throw new Error(`duplicate contract name ${name}`);
      const used = Object.keys(JSON.parse(c.metadata).sources).sort();
      const sourceHashes = {};
      for (const u of used) sourceHashes[u] = sha256(sources[u].content);
      const methodIds = {};
      for (const sig of Object.keys(c.evm.methodIdentifiers).sort()) methodIds[sig] = c.evm.methodIdentifiers[sig];
      const artifact = {
        contractName: name,
        sourceName: unit,
        compiler: { name: 'solc', version },
        settings: {
          evmVersion: SETTINGS.evmVersion,
          optimizer: SETTINGS.optimizer,
          viaIR: SETTINGS.viaIR,
          metadata: SETTINGS.metadata,
        },
        sources: sourceHashes,
        abi: c.abi,
        methodIdentifiers: methodIds,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      };
      artifacts[name] = JSON.stringify(artifact, null, 2) + '\n';
    }
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes('--check');
  let artifacts;
  try {
    artifacts = build();
  } catch (e) {
    fail(e.message);
    return;
  }
  if (check) {
    const problems = [];
    for (const [name, text] of Object.entries(artifacts)) {
      const file = path.join(BUILD_DIR, name + '.json');
      if (!fs.existsSync(file)) problems.push(`missing artifact build/${name}.json`);
      else if (fs.readFileSync(file, 'utf8') !== text) problems.push(`build/${name}.json differs from a fresh compile`);
    }
    if (fs.existsSync(BUILD_DIR)) {
      for (const f of fs.readdirSync(BUILD_DIR).sort()) {
        if (f.endsWith('.json') && !artifacts[f.slice(0, -5)]) problems.push(`stale artifact build/${f} (no such contract)`);
      }
    }
    if (problems.length) {
      fail(problems.join('\n') + '\nrun `node adjudicator/compile.js` and commit adjudicator/build/');
      return;
    }
    process.stdout.write(`compile.js: ${Object.keys(artifacts).length} artifacts match a fresh compile\n`);
    return;
  }
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  for (const [name, text] of Object.entries(artifacts)) {
    const file = path.join(BUILD_DIR, name + '.json');
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) fs.writeFileSync(file, text);
  }
  process.stdout.write(`compile.js: wrote ${Object.keys(artifacts).length} artifacts to adjudicator/build/\n`);
}

main();
