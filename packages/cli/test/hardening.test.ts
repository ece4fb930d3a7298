/** Hardening of the `gradmax` command line (issue 15): pipes, signals, temp files, sizes, ranges. */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Rng } from '@gradmax/core';
import { encodeNpy, serializeModel } from '@gradmax/onnx';
import { EXIT_OK, EXIT_USAGE, main, memoryIO } from '@gradmax/cli';
import { GraphBuilder, tmpDir } from '../../onnx/test/helpers.js';
import { reportError } from '../src/shared/errors.js';
import { isExpectedNoise } from '../../../test/noise.js';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

async function run(argv: string[], cwd?: string) {
  const io = memoryIO({});
  if (cwd) io.cwd = cwd;
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

/** A deep MLP: `layers` Gemm layers of width 4 (inspect prints one line per layer). */
function deepMlp(layers: number, batch: number | string = 'N') {
  const b = new GraphBuilder(new Rng(3));
  let x = b.input('x', [batch, 4]);
  for (let i = 0; i < layers; i++) {
    x = b.op('Gemm', [x, b.weight([4, 4]), b.weight([4])], {}, 1, `fc${i}`);
    if (i < layers - 1) x = b.op('Relu', [x]);
  }
  b.output(x, [batch, 4]);
  return b.model();
}

function saveModelFile(dir: string, name: string, layers = 3): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, serializeModel(deepMlp(layers)));
  return file;
}

describe('stdout closed early (issue 15 item 14)', () => {
  it('gradmax onnx inspect MODEL | head -1 exits quietly', () => {
    const dir = tmpDir('gradmax-cli-epipe-');
    const file = saveModelFile(dir, 'deep.onnx', 400);
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" onnx inspect --json "${file}" | head -1`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('{\n');
    expect(r.status).toBe(0);
  });
});

/** A process id that no longer runs (a child that has exited). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('temporary files after SIGTERM/SIGINT/SIGKILL (issue 15 item 11)', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal} during widen removes the staging folder and exits ${code}`, async () => {
      const dir = tmpDir('gradmax-cli-signal-');
      const b = new GraphBuilder(new Rng(4));
      const x = b.input('x', [64, 256]);
      let h = x;
      for (let i = 0; i < 12; i++) h = b.op('Relu', [b.op('Gemm', [h, b.weight([256, 256], 0.05), b.weight([256])], {}, 1, `fc${i}`)]);
      b.output(h, [64, 256]);
      const file = path.join(dir, 'm.onnx');
      fs.writeFileSync(file, serializeModel(b.model()));
      const child = spawn(process.execPath, [BIN, 'onnx', 'widen', file, '--site', 'fc0', '--add', '4', '--strategy', 'randomOutgoingZero', '-o', path.join(dir, 'w.onnx')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      // wait until the staging folder exists, then interrupt
      let sent = false;
      for (let i = 0; i < 4000 && !sent; i++) {
        if (fs.readdirSync(dir).some((f) => f.startsWith('.w.onnx.tmp-'))) {
          child.kill(signal);
          sent = true;
        } else await new Promise((r) => setTimeout(r, 2));
      }
      const status = await exited;
      expect(sent).toBe(true);
      expect(status).toBe(code);
      expect(err).toMatch(new RegExp(`interrupted \\(${signal}\\); temporary files removed`));
      expect(fs.readdirSync(dir)).toEqual(['m.onnx']);
    });
  }

  it('the next run sweeps temporary files of dead processes beside OUT, not those of live ones or other names', async () => {
    const dir = tmpDir('gradmax-cli-sweep-');
    const file = saveModelFile(dir, 'm.onnx');
    const dead = deadPid();
    const stale = [`.w.onnx.tmp-${dead}-aB3xYz`, `w.onnx.tmp-${dead}-1700000000000`, `w.onnx.data.tmp-${dead}-1700000000001`];
    fs.mkdirSync(path.join(dir, stale[0]!));
    fs.writeFileSync(path.join(dir, stale[0]!, 'w.onnx'), 'partial');
    fs.writeFileSync(path.join(dir, stale[1]!), 'partial');
    fs.writeFileSync(path.join(dir, stale[2]!), 'partial');
    const keep = [`.w.onnx.tmp-${process.pid}-qwerty`, `other.onnx.tmp-${dead}-1700000000000`, `w.onnx.tmp-notapid-1`];
    fs.mkdirSync(path.join(dir, keep[0]!));
    for (const k of keep.slice(1)) fs.writeFileSync(path.join(dir, k), 'x');
    const r = await run(['onnx', 'widen', file, '--site', 'fc0', '--add', '1', '--strategy', 'randomOutgoingZero', '-o', path.join(dir, 'w.onnx')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', 'w.onnx', ...keep].sort());
  });
});

describe('input-driven allocations are bounded (issue 15 item 12)', () => {
  it('--add 1000000000 / 100000000 is refused before anything is allocated; 1e9 is no integer', async () => {
    const dir = tmpDir('gradmax-cli-add-');
    const file = saveModelFile(dir, 'm.onnx');
    for (const add of ['1000000000', '100000000']) {
      const t0 = Date.now();
      const r = await run(['onnx', 'widen', file, '--site', 'fc0', '--add', add, '--strategy', 'randomOutgoingZero', '-o', path.join(dir, 'w.onnx')]);
      expect(r.code, add).toBe(EXIT_USAGE);
      expect(r.err, add).toMatch(new RegExp(`^gradmax onnx widen: --add ${add} at fc0 adds .* weights, about .* GiB of working memory in all, above --max-memory 4.0 GiB; add fewer units or raise --max-memory\\n$`));
      expect(Date.now() - t0).toBeLessThan(5000);
    }
    const sci = await run(['onnx', 'widen', file, '--site', 'fc0', '--add', '1e9', '-o', path.join(dir, 'w.onnx')]);
    expect([sci.code, sci.err]).toEqual([EXIT_USAGE, 'gradmax onnx widen: --add expects an integer, got "1e9"\n']);
    // a lower limit refuses a small growth; a bad size is a usage error
    const low = await run(['onnx', 'widen', file, '--site', 'fc0', '--add', '1000', '--max-memory', '100K', '--strategy', 'randomOutgoingZero', '-o', path.join(dir, 'w.onnx')]);
    expect(low.err).toMatch(/above --max-memory 0\.1 MiB/);
    const bad = await run(['onnx', 'widen', file, '--site', 'fc0', '--add', '1', '--max-memory', 'lots', '-o', path.join(dir, 'w.onnx')]);
    expect(bad.err).toMatch(/--max-memory expects a size such as 4G/);
    const ok = await run(['onnx', 'widen', file, '--site', 'fc0', '--add', '1000', '--max-memory', '1G', '--strategy', 'randomOutgoingZero', '-o', path.join(dir, 'w.onnx')]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(EXIT_OK);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.onnx', 'w.onnx']);
  });

  it('/dev/zero or a FIFO as model, --inputs or --stats is refused without reading it', async () => {
    const dir = tmpDir('gradmax-cli-devzero-');
    const file = saveModelFile(dir, 'm.onnx');
    const fifo = path.join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    const out = path.join(dir, 'w.onnx');
    const widen = ['onnx', 'widen', file, '--site', 'fc0', '--add', '1', '-o', out];
    for (const [argv, re] of [
      [['onnx', 'inspect', '/dev/zero'], /^gradmax onnx inspect: cannot read model file "\/dev\/zero": it is a character device, not a regular file\n$/],
      [['onnx', 'inspect', fifo], /cannot read model file ".*fifo": it is a FIFO, not a regular file/],
      [['onnx', 'inspect', dir], /it is a folder, not a regular file/],
      [['onnx', 'verify', file, '/dev/zero'], /cannot read model file "\/dev\/zero": it is a character device/],
      [[...widen, '--strategy', 'randomOutgoingZero', '--inputs', '/dev/zero'], /cannot read "\/dev\/zero": it is a character device, not a regular file/],
      [[...widen, '--strategy', 'randomOutgoingZero', '--inputs', `x=${fifo}`], /it is a FIFO, not a regular file/],
      [[...widen, '--stats', '/dev/zero'], /cannot read statistics manifest "\/dev\/zero": it is a character device, not a regular file/],
      [[...widen, '--stats', fifo], /cannot read statistics manifest ".*fifo": it is a FIFO/],
    ] as const) {
      const r = await run([...argv]);
      expect(r.code, argv.join(' ')).toBe(EXIT_USAGE);
      expect(r.err, argv.join(' ')).toMatch(re);
    }
    // the npy form of --stats
    fs.symlinkSync('/dev/zero', path.join(dir, 'zero.npy'));
    const npy = await run([...widen, '--stats', path.join(dir, 'zero.npy')]);
    expect(npy.err).toMatch(/zero\.npy": it is a character device, not a regular file/);
    expect(fs.readdirSync(dir).sort()).toEqual(['fifo', 'm.onnx', 'zero.npy']);
  });
});

describe('gradmax bench run --seeds bounds (issue 15 item 13)', () => {
  it('a huge range is a usage error, not a heap abort or a stack overflow', async () => {
    for (const seeds of ['0-1000000000', '0-1000000']) {
      const t0 = Date.now();
      const r = await run(['bench', 'run', '--seeds', seeds, '--out', tmpDir('gradmax-cli-seeds-')]);
      expect(r.code, seeds).toBe(EXIT_USAGE);
      expect(r.err, seeds).toMatch(new RegExp(`^gradmax bench run: --seeds ${seeds} selects \\d+ seeds, more than 100000; split the study`));
      expect(Date.now() - t0).toBeLessThan(5000);
    }
  });
});

describe('small ones (issue 15 item 16)', () => {
  it('verify --atol/--rtol must not be negative', async () => {
    const dir = tmpDir('gradmax-cli-atol-');
    const file = saveModelFile(dir, 'm.onnx');
    for (const flag of ['--atol=-1', '--rtol=-0.5']) {
      const r = await run(['onnx', 'verify', file, file, flag]);
      expect(r.code, flag).toBe(EXIT_USAGE);
      expect(r.err, flag).toMatch(/^gradmax onnx verify: --[ar]tol must be >= 0, got -[\d.]+\n$/);
    }
  });

  it('bench run/report --out FILE is a usage error (exit 2) before anything runs, with the command prefix', async () => {
    const dir = tmpDir('gradmax-cli-benchout-');
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    const runOut = await run(['bench', 'run', '--task', 'teacher-student', '--preset', 'tiny', '--seeds', '1', '--workers', '0', '--out', file]);
    expect([runOut.code, runOut.err]).toEqual([EXIT_USAGE, `gradmax bench run: --out ${file} is a file; give a folder (it is created if missing)\n`]);
    const results = tmpDir('gradmax-cli-benchres-');
    const rep = await run(['bench', 'report', results, '--out', file]);
    expect([rep.code, rep.err]).toEqual([EXIT_USAGE, `gradmax bench report: --out ${file} is a file; give a folder (it is created if missing)\n`]);
    const under = await run(['bench', 'report', results, '--out', path.join(file, 'sub')]);
    expect(under.code).toBe(EXIT_USAGE);
    expect(under.err).toMatch(/^gradmax bench report: cannot create the output folder .*: (ENOTDIR|EEXIST)\n$/);
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });

  it('bench run --task nope and other typed errors carry the command prefix once', async () => {
    const r = await run(['bench', 'run', '--task', 'nope']);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toMatch(/^gradmax bench run: unknown task "nope"/);
    const io = memoryIO({});
    expect(reportError(io, new InvalidArgumentError('gradmax onnx stats: --labels must hold integer class labels'), 'gradmax onnx stats')).toBe(EXIT_USAGE);
    expect(io.err).toBe('gradmax onnx stats: --labels must hold integer class labels\n');
  });
});

describe('gradmax in a clone (issue 15 item 17)', () => {
  it('pnpm gradmax runs the command line, resolving relative paths against the folder it is called from', () => {
    const dir = tmpDir('gradmax-cli-pnpm-');
    saveModelFile(dir, 'm.onnx');
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const r = spawnSync('pnpm', ['-C', root, '--silent', 'gradmax', 'onnx', 'inspect', 'm.onnx'], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: '1' } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^m\.onnx: 3 groups/);
    expect(r.status).toBe(0);
  });
});

describe('widen with the default strategy and no statistics (issue 15 item 18)', () => {
  it('fails with the exact command lines that work, and both work as printed', async () => {
    const dir = tmpDir('gradmax-cli-default-');
    saveModelFile(dir, 'model.onnx');
    const pasted = ['onnx', 'widen', 'model.onnx', '--site', 'fc1', '--add', '8', '-o', 'wider.onnx'];
    const r = await run(pasted, dir);
    expect(r.code).toBe(EXIT_USAGE);
    const lines = r.err.trim().split('\n');
    expect(lines[0]).toBe('gradmax onnx widen: strategy "gradmax" needs the growth matrix M of "fc1" (--stats FILE, or computed from labelled data with --data); for example:');
    const withData = /with data: +(.*?) {3}\(/.exec(lines[1]!)![1]!;
    const withoutData = /without data: +(.*?) {3}\(/.exec(lines[2]!)![1]!;
    expect(withoutData).toBe('gradmax onnx widen model.onnx --site fc1 --add 8 -o wider.onnx --strategy randomOutgoingZero');
    expect(withData).toBe('gradmax onnx widen model.onnx --site fc1 --add 8 -o wider.onnx --data X.npy --labels Y.npy --loss ce');
    expect(fs.readdirSync(dir)).toEqual(['model.onnx']);
    // X.npy / Y.npy: 32 examples of the model's input, integer labels of its 4 outputs
    const rng = new Rng(5);
    fs.writeFileSync(path.join(dir, 'X.npy'), encodeNpy(Float32Array.from({ length: 32 * 4 }, () => rng.normal()), [32, 4]));
    fs.writeFileSync(path.join(dir, 'Y.npy'), encodeNpy(Float64Array.from({ length: 32 }, (_, i) => i % 4), [32]));
    for (const line of [withoutData, withData]) {
      fs.rmSync(path.join(dir, 'wider.onnx'), { force: true });
      const ok = await run(line.split(' ').slice(1), dir);
      expect(ok.err, line).not.toMatch(/gradmax onnx widen:|error/);
      expect(ok.code, line).toBe(EXIT_OK);
      expect(fs.existsSync(path.join(dir, 'wider.onnx')), line).toBe(true);
    }
  });
});

describe('gradmax onnx does not load the benchmark harness (issue 15 item 19)', () => {
  it('gradmax onnx inspect loads no tfjs, MNIST or harness module', () => {
    const dir = tmpDir('gradmax-cli-lazy-');
    const file = saveModelFile(dir, 'm.onnx');
    fs.writeFileSync(
      path.join(dir, 'hooks.mjs'),
      // Only the part of the URL below the repository root is matched (a checkout under a folder named "…harness…"
      // would otherwise match every module).
      `const ROOT = ${JSON.stringify(new URL('../../..', import.meta.url).href)};\n` +
        "export async function resolve(s, c, next) { const r = await next(s, c); if (/tfjs|mnist|harness/.test(r.url.startsWith(ROOT) ? r.url.slice(ROOT.length) : r.url)) process.stderr.write(`LOADED ${r.url}\\n`); return r; }\n",
    );
    fs.writeFileSync(path.join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
    const r = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), BIN, 'onnx', 'inspect', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    // the hook sees the bench path load the harness (the check works)
    const b = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), BIN, 'bench', 'list'], { encoding: 'utf8' });
    expect(b.stderr).toMatch(/LOADED .*harness/);
  });
});

describe('typedoc names every main entry point (issue 15 item 20)', () => {
  it('a package with several entry points names its main module with @module (else typedoc shows "Module ")', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const multi: string[] = [];
    for (const name of fs.readdirSync(path.join(root, 'packages'))) {
      const pkgFile = path.join(root, 'packages', name, 'package.json');
      if (!fs.existsSync(pkgFile)) continue;
      const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { name: string; exports?: Record<string, unknown> };
      const entries = Object.keys(pkg.exports ?? {}).filter((k) => k !== './package.json');
      if (entries.length < 2) continue;
      multi.push(pkg.name);
      const head = /^\/\*\*[\s\S]*?\*\//.exec(fs.readFileSync(path.join(root, 'packages', name, 'src', 'index.ts'), 'utf8'))?.[0] ?? '';
      expect(head, pkg.name).toContain(`@module ${pkg.name}`);
    }
    expect(multi.sort()).toEqual(['@gradmax/core', '@gradmax/onnx', '@gradmax/strategies']);
  });
});

describe('test output noise (issue 15 item 21)', () => {
  it('the tfjs Node.js banner is expected noise; other warnings are not', () => {
    const banner =
      '\n============================\nHi, looks like you are running TensorFlow.js in Node.js. To speed things up dramatically, install our node backend, visit https://github.com/tensorflow/tfjs-node for more details. \n============================\n';
    expect(isExpectedNoise(banner)).toBe(true);
    expect(isExpectedNoise(`${banner}\nWarning: something real`)).toBe(false);
    expect(isExpectedNoise('Warning: tf.someOp is deprecated')).toBe(false);
    expect(isExpectedNoise('MaxListenersExceededWarning: Possible EventEmitter memory leak detected')).toBe(false);
  });
});

describe('widen --data and stats share the guards (issue 15 items 11, 12)', () => {
  function data(dir: string): void {
    const rng = new Rng(4);
    fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(Float32Array.from({ length: 8 * 4 }, () => rng.normal()), [8, 4]));
    fs.writeFileSync(path.join(dir, 'y.npy'), encodeNpy(Float64Array.from({ length: 8 }, (_, i) => i % 4), [8]));
  }

  it('widen --data refuses --add 100000000 before computing statistics or allocating', async () => {
    const dir = tmpDir('gradmax-cli-data-add-');
    const file = saveModelFile(dir, 'm.onnx');
    data(dir);
    const t0 = Date.now();
    const r = await run(['onnx', 'widen', file, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'fc0', '--add', '100000000', '-o', path.join(dir, 'w.onnx')]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toMatch(/--add 100000000 at fc0 adds .* above --max-memory 4\.0 GiB/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(fs.existsSync(path.join(dir, 'w.onnx'))).toBe(false);
  });

  it('stats sweeps manifests half-written by dead processes, not those of live ones', async () => {
    const dir = tmpDir('gradmax-cli-stats-sweep-');
    const file = saveModelFile(dir, 'm.onnx');
    data(dir);
    const out = path.join(dir, 'stats');
    fs.mkdirSync(out);
    const stale = `stats.json.tmp-${deadPid()}-1700000000000`;
    const live = `stats.json.tmp-${process.pid}-1700000000000`;
    fs.writeFileSync(path.join(out, stale), '{');
    fs.writeFileSync(path.join(out, live), '{');
    const r = await run(['onnx', 'stats', file, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'fc0', '-o', out]);
    expect(r.code, r.err).toBe(EXIT_OK);
    const files = fs.readdirSync(out);
    expect(files).toContain('stats.json');
    expect(files).toContain(live);
    expect(files).not.toContain(stale);
  });
});
