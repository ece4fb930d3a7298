#!/usr/bin/env node
// Packaging check (CI): packs every public package with `pnpm pack`, checks each tarball (LICENSE, README links that
// work on npm, source maps whose sources are shipped, no test files), installs the tarballs into a fresh project
// outside the workspace (offline, from the local pnpm store; ONNXRUNTIME_NODE_INSTALL=skip), imports every entry point,
// checks that require() fails with the ESM-only message, and runs `gradmax onnx inspect` on a small model.
//
// Usage: node scripts/check-packages.mjs [--keep]   (after `pnpm build`). Exit 0 ok, 1 a check failed; when the
// offline install cannot work here (a dependency missing from the local store), the install part is skipped with a
// message saying so (exit 0), unless GRADMAX_PACK_CHECK_STRICT=1.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// A 4-5-3 MLP (x[N,4] -> Gemm fc1 -> Relu -> Gemm fc2), written with the example's dependencies.
const MAKE_MODEL = `
import { writeFileSync } from 'node:fs';
import { create } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProto_DataType } from 'onnx-buf';
import { makeNode, makeTensor, makeValueInfo, serializeModel } from '@gradmax/onnx';
const F = TensorProto_DataType.FLOAT;
const w = (n, d) => makeTensor(n, F, d, Array.from({ length: d.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + 1)));
const graph = create(GraphProtoSchema, { name: 'mlp', input: [makeValueInfo('x', F, ['N', 4])], output: [makeValueInfo('y', F, ['N', 3])],
  initializer: [w('W1', [5, 4]), w('b1', [5]), w('W2', [3, 5]), w('b2', [3])],
  node: [makeNode('Gemm', ['x', 'W1', 'b1'], ['h'], { transB: 1 }, 'fc1'), makeNode('Relu', ['h'], ['r'], {}, 'relu'), makeNode('Gemm', ['r', 'W2', 'b2'], ['y'], { transB: 1 }, 'fc2')] });
const proto = create(ModelProtoSchema, { irVersion: 8n, producerName: 'gradmax-pack-check', opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })], graph });
writeFileSync(process.argv[1], serializeModel(proto));
`;

const root = fileURLToPath(new URL('..', import.meta.url));
const keep = process.argv.includes('--keep');
const strict = process.env.GRADMAX_PACK_CHECK_STRICT === '1';
const packages = ['core', 'strategies', 'tfjs', 'onnx', 'harness', 'cli'];
const failures = [];
const fail = (msg) => {
  failures.push(msg);
  console.log(`FAIL ${msg}`);
};
const ok = (msg) => console.log(`ok   ${msg}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gradmax-pack-check-'));
const tarballs = path.join(work, 'tarballs');
fs.mkdirSync(tarballs);

/** name -> version of every package in the lockfile's "packages:" section that has exactly one version there. */
function lockedVersions(lock) {
  // pnpm 12 lockfiles may start with a document for the package manager itself: the last "packages:" is the project's
  const section = lock.split(/^packages:$/m).at(-1)?.split(/^snapshots:$/m)[0] ?? '';
  const seen = new Map();
  for (const m of section.matchAll(/^  '?(@?[^@\s']+)@([^('\s:]+)'?:$/gm)) {
    const [, name, version] = m;
    seen.set(name, seen.has(name) && seen.get(name) !== version ? null : version);
  }
  return new Map([...seen].filter(([, v]) => v));
}

function list(tgz) {
  return execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
}
function readFromTar(tgz, file) {
  return execFileSync('tar', ['-xzOf', tgz, `package/${file}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

// 1. pack and inspect every tarball
const packed = {};
for (const name of packages) {
  const dir = path.join(root, 'packages', name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (!fs.existsSync(path.join(dir, 'dist'))) {
    fail(`${pkg.name}: no dist/ (run pnpm build first)`);
    continue;
  }
  const out = execFileSync('pnpm', ['pack', '--pack-destination', tarballs], { cwd: dir, encoding: 'utf8' }).trim().split('\n');
  const tgz = out.map((l) => l.trim()).reverse().find((l) => l.endsWith('.tgz'));
  const file = tgz && (path.isAbsolute(tgz) ? tgz : path.join(tarballs, path.basename(tgz)));
  if (!file || !fs.existsSync(file)) {
    fail(`${pkg.name}: pnpm pack wrote no tarball (${out.join(' | ')})`);
    continue;
  }
  packed[pkg.name] = { file, pkg };
  const files = new Set(list(file));
  const problems = [];
  if (!files.has('LICENSE')) problems.push('no LICENSE');
  for (const k of ['repository', 'homepage', 'bugs']) if (!pkg[k]) problems.push(`no "${k}" field`);
  const readme = files.has('README.md') ? readFromTar(file, 'README.md') : '';
  if (!readme) problems.push('no README.md');
  if (/\]\((?!https?:|#)[^)]*\.\.\//.test(readme)) problems.push('README links outside the package (../)');
  const tests = [...files].filter((f) => /\.test\.(ts|js)$/.test(f));
  if (tests.length) problems.push(`test files shipped: ${tests.slice(0, 3).join(', ')}`);
  let maps = 0;
  for (const f of files) {
    if (!f.endsWith('.map')) continue;
    maps++;
    const map = JSON.parse(readFromTar(file, f));
    for (const s of map.sources ?? []) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), map.sourceRoot ?? '', s));
      if (!files.has(target)) {
        problems.push(`${f} points at ${target}, which is not in the tarball`);
        break;
      }
    }
    if (problems.length > 3) break;
  }
  const entries = Object.entries(pkg.exports ?? {}).filter(([k]) => k !== './package.json');
  for (const [sub, e] of entries) {
    if (!e?.require) problems.push(`export "${sub}" has no "require" condition (ESM-only message)`);
    const target = e?.import?.default ?? e?.import;
    if (typeof target === 'string' && !files.has(target.replace(/^\.\//, ''))) problems.push(`export "${sub}" -> ${target} missing`);
  }
  if (problems.length) fail(`${pkg.name}: ${problems.join('; ')}`);
  else ok(`${pkg.name}: ${files.size} files, LICENSE, README, ${maps} source maps with their sources, ${entries.length} entry point(s)`);
}

// 2. a fresh project outside the workspace, installed offline from the local store
const app = path.join(work, 'app');
fs.mkdirSync(app);
const spec = (n) => `file:${packed[n].file}`;
const names = Object.keys(packed);
fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'gradmax-pack-check', private: true, type: 'module', dependencies: Object.fromEntries(names.map((n) => [n, spec(n)])) }, null, 2)}\n`);
// the @gradmax/* dependencies between the tarballs resolve to the tarballs, never to the registry
// and every third-party package to the version the workspace lockfile tested (also what makes an offline install
// from the local store possible: fresh resolution would pick newer versions the store does not hold)
const locked = lockedVersions(fs.readFileSync(path.join(root, 'pnpm-lock.yaml'), 'utf8'));
fs.writeFileSync(
  path.join(app, 'pnpm-workspace.yaml'),
  [
    'autoInstallPeers: false',
    'allowBuilds:',
    '  onnxruntime-node: false',
    'overrides:',
    ...names.map((n) => `  '${n}': '${spec(n)}'`),
    ...[...locked].filter(([n]) => !n.startsWith('@gradmax/')).map(([n, v]) => `  '${n}': '${v}'`),
    '',
  ].join('\n'),
);
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', CI: 'true' };
delete env.npm_config_user_agent;
const install = spawnSync('pnpm', ['install', '--offline'], { cwd: app, env, encoding: 'utf8' });
if (install.status !== 0) {
  const why = `${install.stderr}\n${install.stdout}`.split('\n').find((l) => /ERR_PNPM|offline|not found|ENOTCACHED/i.test(l))?.trim() ?? `pnpm install exited ${install.status}`;
  const msg = `offline install from the local pnpm store is not possible here (${why}); install part skipped`;
  if (strict || failures.length) fail(msg);
  else console.log(`SKIP ${msg}`);
} else {
  ok('installed every tarball offline into a fresh project');
  // 3. every entry point imports; require() says ESM only
  for (const n of names) {
    for (const sub of Object.keys(packed[n].pkg.exports ?? {}).filter((k) => k !== './package.json')) {
      const id = sub === '.' ? n : `${n}/${sub.slice(2)}`;
      const imp = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(id)}); if (${sub === '.'} && !Object.keys(m).length) throw new Error('no exports');`], { cwd: app, env, encoding: 'utf8' });
      if (imp.status !== 0) fail(`import ${id}: ${imp.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      else ok(`import ${id}`);
      const req = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(id)})`], { cwd: app, env, encoding: 'utf8' });
      if (req.status === 0 || !/is an ES module package and cannot be loaded with require\(\)/.test(req.stderr)) fail(`require ${id} does not fail with the ESM-only message: ${req.stderr.trim().split('\n')[0]}`);
    }
  }
  // 4. the installed gradmax binary on a small model
  if (packed['@gradmax/cli']) {
    const model = path.join(app, 'mlp.onnx');
    const make = spawnSync(process.execPath, ['--input-type=module', '-e', MAKE_MODEL, model], { cwd: path.join(root, 'examples', 'onnx-widen'), encoding: 'utf8' });
    if (make.status !== 0) fail(`could not write the test model: ${make.stderr.trim()}`);
    const bin = path.join(app, 'node_modules', '.bin', 'gradmax');
    const r = spawnSync(bin, ['onnx', 'inspect', 'mlp.onnx'], { cwd: app, env, encoding: 'utf8' });
    if (r.status !== 0 || !/^mlp\.onnx: \d+ groups?, 1 growable/.test(r.stdout)) fail(`gradmax onnx inspect: exit ${r.status}: ${r.stdout}${r.stderr}`);
    else ok(`gradmax onnx inspect mlp.onnx: ${r.stdout.split('\n')[0]}`);
  }
}

if (keep) console.log(`kept ${work}`);
else fs.rmSync(work, { recursive: true, force: true });
console.log(failures.length ? `${failures.length} packaging check(s) failed` : 'packaging checks passed');
process.exit(failures.length ? 1 : 0);
