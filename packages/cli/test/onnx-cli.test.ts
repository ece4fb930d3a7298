import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, registerStrategy } from '@gradmax/core';
import { encodeNpy, findSites, loadModel, serializeModel } from '@gradmax/onnx';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, createProgressBar, formatTable, main, memoryIO, parseCommand, UsageError } from '@gradmax/cli';
import { GraphBuilder, tmpDir } from '../../onnx/test/helpers.js';

function mlpFile(dir = tmpDir('gradmax-cli-'), seed = 1, batch: number | string = 'N'): string {
  const b = new GraphBuilder(new Rng(seed));
  const x = b.input('x', [batch, 4]);
  const h = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])], {}, 1, 'fc1');
  const h2 = b.op('Gemm', [b.op('Relu', [h]), b.weight([5, 3]), b.weight([3])], {}, 1, 'fc2');
  const y = b.op('Gemm', [b.op('Sigmoid', [h2]), b.weight([3, 2])], {}, 1, 'fc3');
  b.output(y, [batch, 2]);
  const file = path.join(dir, 'mlp.onnx');
  fs.writeFileSync(file, serializeModel(b.model()));
  return file;
}

async function run(argv: string[], env: Record<string, string> = {}) {
  const io = memoryIO(env);
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

function oneLine(err: string) {
  expect(err.trim().split('\n')).toHaveLength(1);
}

describe('gradmax', () => {
  it('prints help and rejects unknown commands', async () => {
    expect((await run(['--help'])).out).toMatch(/Usage: gradmax <command>/);
    const r = await run(['frobnicate']);
    expect(r.code).toBe(EXIT_USAGE);
    oneLine(r.err);
    expect((await run([])).code).toBe(EXIT_USAGE);
    for (const sub of [['onnx', '--help'], ['onnx', 'inspect', '--help'], ['onnx', 'widen', '--help'], ['onnx', 'verify', '--help']]) {
      const h = await run(sub);
      expect(h.code, sub.join(' ')).toBe(EXIT_OK);
      expect(h.out).toMatch(/Usage: gradmax onnx/);
    }
  });

  it('dispatches bench to the bench module', async () => {
    const r = await run(['bench', '--help']);
    expect(r.out + r.err).toMatch(/bench/);
  });
});

describe('gradmax onnx inspect', () => {
  it('--json lists one entry per candidate site', async () => {
    const file = mlpFile();
    const r = await run(['onnx', 'inspect', file, '--json']);
    expect(r.code).toBe(EXIT_OK);
    const json = JSON.parse(r.out) as { sites: { name: string; kind: string; growable: boolean; reason: string | null; activation: { f0: number } | null }[] };
    expect(json.sites.map((s) => [s.name, s.kind, s.growable])).toEqual([
      ['fc1->fc2', 'dense', true],
      ['fc2->fc3', 'dense', true],
      ['fc3->?', 'dense', false],
    ]);
    expect(json.sites[2]!.reason).toMatch(/graph output|no next/);
    expect(json.sites[1]!.activation!.f0).toBe(0.5);
    const groups = (JSON.parse(r.out) as { groups: { name: string; growable: boolean; members: { producers: string[]; consumers: string[] } }[] }).groups;
    expect(groups.map((g) => [g.name, g.growable, g.members.consumers])).toEqual([
      ['fc1', true, ['fc2']],
      ['fc2', true, ['fc3']],
      ['fc3', false, []],
    ]);
    const text = await run(['onnx', 'inspect', file]);
    expect(text.out).toMatch(/3 groups, 2 growable/);
    expect(text.out).toMatch(/fc1 +yes +\d+ +1 +fc1 +fc2/);
    expect(text.out).toMatch(/not growable:\n {2}fc3: .*graph output/);
  });

  it('bad flags, missing and invalid files exit 2 with one line', async () => {
    const file = mlpFile();
    for (const argv of [['onnx', 'inspect'], ['onnx', 'inspect', file, '--bogus'], ['onnx', 'inspect', '/nonexistent.onnx'], ['onnx', 'inspect', file, file]]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(EXIT_USAGE);
      oneLine(r.err);
    }
    expect((await run(['onnx', 'inspect', file, '--bogus'])).err).toMatch(/unknown option --bogus/);
    const junk = path.join(tmpDir(), 'junk.onnx');
    fs.writeFileSync(junk, 'not a model at all');
    const r = await run(['onnx', 'inspect', junk]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toMatch(/not a valid ONNX model/);
  });
});

describe('gradmax onnx widen', () => {
  it('grows with a weights-only strategy, verifies, prints a summary', async () => {
    const file = mlpFile();
    const before = fs.readFileSync(file);
    const out = path.join(path.dirname(file), 'out.onnx');
    const r = await run(['onnx', 'widen', file, '--site', 'fc1->fc2', '--add', '3', '--site', 'fc2', '--add', '2', '--strategy', 'randomOutgoingZero', '--seed', '4', '--dim', 'N=3', '-o', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/fc1 +randomOutgoingZero +5 -> 8/);
    expect(r.out).toMatch(/fc2 +randomOutgoingZero +3 -> 5/);
    expect(r.out).toMatch(/verification/);
    expect(fs.readFileSync(file)).toEqual(before);
    const sites = findSites(loadModel(out));
    expect(sites.map((s) => s.units)).toEqual([8, 5, undefined]);
  });

  it('widens a model whose large weights stay in the file (deferred loading), output equal to a full read', async () => {
    const dir = tmpDir('gradmax-cli-big-');
    const b = new GraphBuilder(new Rng(3));
    const x = b.input('x', ['N', 64]);
    const h = b.op('Gemm', [x, b.weight([64, 300], 0.1), b.weight([300])], {}, 1, 'fc1');
    b.output(b.op('Gemm', [b.op('Relu', [h]), b.weight([300, 80], 0.1)], {}, 1, 'fc2'), ['N', 80]);
    const file = path.join(dir, 'big.onnx');
    fs.writeFileSync(file, serializeModel(b.model()));
    const before = fs.readFileSync(file);
    expect(loadModel(file).deferredSources.size).toBe(2); // 64x300 and 300x80 float32 are above 64 KiB
    const out = path.join(dir, 'out.onnx');
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '7', '--strategy', 'random', '--seed', '5', '--dim', 'N=4', '-o', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/fc1 +random +300 -> 307/);
    expect(r.out).toMatch(/yes/);
    expect(fs.readFileSync(file)).toEqual(before);
    // the same growth on a fully read model writes the same bytes
    const { growModel, saveModel } = await import('@gradmax/onnx');
    const eager = loadModel(file, { deferThreshold: Infinity });
    growModel(eager, [{ site: 'fc1->fc2', count: 7 }], { strategy: 'random', seed: 5 });
    const ref = path.join(dir, 'ref.onnx');
    saveModel(eager, ref);
    expect(fs.readFileSync(out).equals(fs.readFileSync(ref))).toBe(true);
  });

  it('gradmax with M from a .npy file; --json summary', async () => {
    const file = mlpFile();
    const dir = path.dirname(file);
    const m = Matrix.from(3, 4, new Rng(2).fillNormal(new Float64Array(12)));
    fs.writeFileSync(path.join(dir, 'M.npy'), encodeNpy(m.data, [3, 4]));
    const out = path.join(dir, 'g.onnx');
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--stats', path.join(dir, 'M.npy'), '--dim', 'N=2', '-o', out, '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT_OK);
    const json = JSON.parse(r.out) as { strategy: string; sites: { unitsAfter: number }[]; verification: { ok: boolean } };
    expect(json.strategy).toBe('gradmax');
    expect(json.sites[0]!.unitsAfter).toBe(7);
    expect(json.verification.ok).toBe(true);
    // a JSON manifest works too
    fs.writeFileSync(path.join(dir, 'stats.json'), JSON.stringify({ sites: { 'fc1->fc2': { moment: 'M.npy', count: 10 } } }));
    const r2 = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '--stats', path.join(dir, 'stats.json'), '--dim', 'N=2', '-o', path.join(dir, 'g2.onnx')]);
    expect(r2.code).toBe(EXIT_OK);
  });

  it('refuses incoming-zero growth through f(0) != 0 and usage errors, leaving no output', async () => {
    const file = mlpFile();
    const dir = path.dirname(file);
    const out = path.join(dir, 'x.onnx');
    const cases: [string[], RegExp][] = [
      [['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '-o', file, '--strategy', 'randomOutgoingZero'], /refusing to overwrite the input/],
      [['onnx', 'widen', file, '--site', 'nope', '--add', '1', '-o', out, '--strategy', 'randomOutgoingZero'], /no group named "nope"/],
      [['onnx', 'widen', file, '--site', 'fc1', '--add', '0', '-o', out], /--add must be an integer >= 1/],
      [['onnx', 'widen', file, '--site', 'fc1', '--site', 'fc2', '--add', '1', '-o', out], /one --add K per --site/],
      [['onnx', 'widen', file, '--site', 'fc3', '--add', '1', '-o', out, '--strategy', 'randomOutgoingZero'], /not growable/],
      [['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '-o', out, '--strategy', 'nosuch'], /unknown strategy "nosuch"/],
      [['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '--strategy', 'randomOutgoingZero'], /-o OUT is required/],
      [['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '-o', out, '--seed', 'x'], /--seed expects an integer/],
      [['onnx', 'widen', file, '--site'], /option --site needs a value/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(EXIT_USAGE);
      oneLine(r.err);
      expect(r.err, argv.join(' ')).toMatch(re);
      expect(fs.existsSync(out), argv.join(' ')).toBe(false);
    }
    // no statistics for the default strategy: the error line, then the command lines that work (issue 15 item 18)
    const noStats = await run(['onnx', 'widen', file, '--site', 'fc2', '--add', '1', '-o', out]);
    expect(noStats.code).toBe(EXIT_USAGE);
    expect(noStats.err).toMatch(/needs the growth matrix M .*\n  with data: .*\n  without data: /);
    expect(fs.existsSync(out)).toBe(false);
    // gradmax with zero incoming weights through a Sigmoid (f(0) = 0.5) would change the function
    const m = Matrix.from(2, 5, new Rng(2).fillNormal(new Float64Array(10)));
    fs.writeFileSync(path.join(dir, 'M3.npy'), encodeNpy(m.data, [2, 5]));
    const r = await run(['onnx', 'widen', file, '--site', 'fc2', '--add', '1', '--stats', path.join(dir, 'M3.npy'), '--dim', 'N=1', '-o', out]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toMatch(/f\(0\) = 0.5/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('--no-verify skips verification; a non-preserving strategy reports differences but exits 0', async () => {
    const file = mlpFile(tmpDir(), 3, 2);
    const out = path.join(path.dirname(file), 'r.onnx');
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'randomOutgoingZero', '--no-verify', '-o', out]);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).not.toMatch(/verification/);
    registerStrategy('testNoisy', () => ({
      name: 'testNoisy',
      functionPreserving: false,
      needs: { moment: false, samples: false, lossOracle: false },
      grow: ({ site, count, rng }) => ({
        incoming: Matrix.from(count, site.fanIn, rng.fillNormal(new Float64Array(count * site.fanIn))),
        incomingBias: new Float64Array(count),
        outgoing: Matrix.from(site.fanOut, count, rng.fillNormal(new Float64Array(count * site.fanOut))),
        report: { strategy: 'testNoisy', site: site.name, count, notes: [] },
      }),
    }));
    const r2 = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'testNoisy', '-o', path.join(path.dirname(file), 'r2.onnx')]);
    expect(r2.code).toBe(EXIT_OK);
    expect(r2.out).toMatch(/not function-preserving: differences are expected/);
  });
});

describe('gradmax onnx widen: exit code 1', () => {
  it('fails verification when a strategy claiming function preservation changes the outputs', async () => {
    registerStrategy('testBrokenPreserving', () => ({
      name: 'testBrokenPreserving',
      functionPreserving: true,
      needs: { moment: false, samples: false, lossOracle: false },
      grow: ({ site, count, rng }) => ({
        incoming: Matrix.from(count, site.fanIn, rng.fillNormal(new Float64Array(count * site.fanIn))),
        incomingBias: new Float64Array(count).fill(1),
        outgoing: Matrix.from(site.fanOut, count, rng.fillNormal(new Float64Array(site.fanOut * count))),
        report: { strategy: 'testBrokenPreserving', site: site.name, count, notes: [] },
      }),
    }));
    const file = mlpFile(tmpDir(), 5, 2);
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'testBrokenPreserving', '-o', path.join(path.dirname(file), 'bad.onnx')]);
    expect(r.code).toBe(EXIT_FAILED);
    oneLine(r.err);
    expect(r.err).toMatch(/verification failed: output ".*" differs by .* although "testBrokenPreserving" is function-preserving/);
  });
});

describe('gradmax onnx verify', () => {
  it('exit 0 for equal functions, 1 for different ones, 2 for an unavailable provider', async () => {
    const dir = tmpDir();
    const a = mlpFile(dir, 1, 2);
    const b = path.join(dir, 'b.onnx');
    fs.copyFileSync(a, b);
    const ok = await run(['onnx', 'verify', a, b]);
    expect(ok.code).toBe(EXIT_OK);
    expect(ok.out).toMatch(/max \|diff\|/);
    const otherDir = tmpDir();
    const c = mlpFile(otherDir, 99, 2);
    const bad = await run(['onnx', 'verify', a, c, '--json']);
    expect(bad.code).toBe(EXIT_FAILED);
    expect(JSON.parse(bad.out).ok).toBe(false);
    oneLine(bad.err);
    const cuda = await run(['onnx', 'verify', a, b, '--execution-provider', 'cuda']);
    expect(cuda.code).toBe(EXIT_USAGE);
    expect(cuda.err).toMatch(/execution provider "cuda"/);
    oneLine(cuda.err);
    const nosuch = await run(['onnx', 'verify', a, b, '--execution-provider', 'nosuch']);
    expect(nosuch.err).toMatch(/not supported by onnxruntime-node/);
    const missing = await run(['onnx', 'verify', a]);
    expect(missing.code).toBe(EXIT_USAGE);
    // supplied inputs
    fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(new Float32Array(8).fill(0.5), [2, 4]));
    const withInputs = await run(['onnx', 'verify', a, b, '--inputs', path.join(dir, 'x.npy'), '--json']);
    expect(withInputs.err).toBe('');
    expect(withInputs.code).toBe(EXIT_OK);
    expect(JSON.parse(withInputs.out).inputs).toEqual({ x: [2, 4] });
  });
});

describe('shared utilities', () => {
  it('parseCommand gives one-line usage errors', () => {
    expect(() => parseCommand('cmd', ['--x'], {})).toThrow(UsageError);
    expect(() => parseCommand('cmd', ['--x'], {})).toThrow('cmd: unknown option --x (see cmd --help)');
    expect(() => parseCommand('cmd', ['a', 'b'], {}, { max: 1 })).toThrow('cmd: unexpected argument "b"');
    expect(parseCommand('cmd', ['--n', '3', 'p'], { n: { type: 'string' } }, { min: 1 })).toMatchObject({ values: { n: '3' }, positionals: ['p'] });
  });

  it('progress prints plain lines without a TTY (and with CI=true), redraws with a TTY', () => {
    const plain = memoryIO();
    const bar = createProgressBar(plain, 'writing', 100);
    for (let i = 0; i <= 100; i += 5) bar.update(i);
    bar.finish();
    expect(plain.err.split('\n').filter(Boolean)).toEqual(['writing 0% (0 of 100)', 'writing 25% (25 of 100)', 'writing 50% (50 of 100)', 'writing 75% (75 of 100)', 'writing 100% (100 of 100)']);
    const ci = { ...memoryIO({ CI: 'true' }), isTTY: true };
    let err = '';
    ci.stderr = { write: (t: string) => (err += t) };
    const b2 = createProgressBar(ci, 'x', 10);
    b2.update(5);
    b2.finish();
    expect(err).not.toMatch(/\r/);
    let tty = '';
    const b3 = createProgressBar({ stdout: { write: () => true }, stderr: { write: (t: string) => (tty += t) }, isTTY: true, env: {} }, 'x', 10);
    b3.update(5);
    b3.finish();
    expect(tty).toMatch(/\r\[#+\.+\] x 50%/);
  });

  it('formatTable pads columns and right-aligns numbers', () => {
    expect(formatTable(['a', 'n'], [['x', 1], ['long', 100]])).toBe('a       n\n----  ---\nx       1\nlong  100\n');
  });
});
