import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Matrix, Rng, registerStrategy } from '@gradmax/core';
import { encodeNpy, findSites, loadModel, serializeModel } from '@gradmax/onnx';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, main, memoryIO } from '@gradmax/cli';
import { GraphBuilder, moveInitializersToExternalFile, tmpDir } from '../../onnx/test/helpers.js';

async function run(argv: string[], cwd?: string) {
  const io = memoryIO({});
  if (cwd) io.cwd = cwd;
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

function mlp(seed = 1, batch: number | string = 'N') {
  const b = new GraphBuilder(new Rng(seed));
  const x = b.input('x', [batch, 4]);
  const h = b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])], {}, 1, 'fc1');
  b.output(b.op('Gemm', [b.op('Relu', [h]), b.weight([5, 3])], {}, 1, 'fc2'), [batch, 3]);
  return b.model();
}

function save(model: ReturnType<typeof mlp>, dir: string, name: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, serializeModel(model));
  return file;
}

/** Files in `dir` other than `keep` (temporary files and folders left behind). */
function leftovers(dir: string, keep: string[]): string[] {
  return fs.readdirSync(dir).filter((f) => !keep.includes(f));
}

describe('gradmax onnx widen without --dim (issue 11 item 3)', () => {
  it('a symbolic batch dim: verification chooses it, runs 8 samples and prints the values', async () => {
    const dir = tmpDir('gradmax-cli-dims-');
    const file = save(mlp(), dir, 'm.onnx');
    const out = path.join(dir, 'w.onnx');
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'randomOutgoingZero', '-o', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/verification \(cpu, 8 samples in 1 run, input scales 1 and 10, dims N=8 \(batch\), inputs x\[8,4\]\):/);
    expect(r.out).toMatch(/ yes\n/);
    expect(r.out).toMatch(/wrote .*w\.onnx/);
    expect(findSites(loadModel(out))[0]!.units).toBe(7);
    const json = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '--strategy', 'randomOutgoingZero', '-o', path.join(dir, 'j.onnx'), '--json']);
    const v = JSON.parse(json.out).verification as { ok: boolean; dims: Record<string, number>; samples: number; runs: number };
    expect([v.ok, v.dims, v.samples, v.runs]).toEqual([true, { N: 8 }, 8, 1]);
    // --dim still sets a value; a name that is no symbolic dim is a usage error
    const given = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '--strategy', 'randomOutgoingZero', '--dim', 'N=2', '-o', path.join(dir, 'g.onnx')]);
    expect(given.out).toMatch(/8 samples in 4 runs.*dims N=2 \(--dim\)/);
    const typo = await run(['onnx', 'verify', file, file, '--dim', 'batch=2']);
    expect(typo.code).toBe(EXIT_USAGE);
    expect(typo.err).toMatch(/--dim batch names no symbolic input dimension of the model \(symbolic: N\)/);
  });

  it('symbolic batch and spatial dims of a CNN', async () => {
    const dir = tmpDir('gradmax-cli-cnn-');
    const b = new GraphBuilder(new Rng(2));
    const x = b.input('input', ['batch_size', 3, 'height', 'width']);
    const c1 = b.op('Relu', [b.op('Conv', [x, b.weight([4, 3, 3, 3]), b.weight([4])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 1, 'conv1')]);
    const c2 = b.op('Conv', [c1, b.weight([6, 4, 3, 3]), b.weight([6])], { kernel_shape: [3, 3], strides: [2, 2] }, 1, 'conv2');
    const f = b.op('Relu', [b.op('Gemm', [b.op('Flatten', [b.op('GlobalAveragePool', [b.op('Relu', [c2])])]), b.weight([6, 5]), b.weight([5])], {}, 1, 'fc1')]);
    b.output(b.op('Gemm', [f, b.weight([5, 2])], {}, 1, 'fc2'), ['batch_size', 2]);
    const file = save(b.model(), dir, 'cnn.onnx');
    const out = path.join(dir, 'w.onnx');
    // (conv sites of a model with dynamic spatial dims are the site finder's business; the head grows here)
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '3', '--strategy', 'randomOutgoingZero', '-o', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/dims batch_size=8 \(batch\) height=32 \(default\) width=32 \(default\), inputs input\[8,3,32,32\]/);
    expect(fs.existsSync(out)).toBe(true);
    // gradmax onnx verify chooses and prints them the same way
    const v = await run(['onnx', 'verify', file, out]);
    expect(v.code).toBe(EXIT_OK);
    expect(v.out).toMatch(/8 samples in 1 run.*height=32/);
  });
});

describe('gradmax onnx verify: external data (issue 15 item 1)', () => {
  it("reads A's external data from A's folder when run from inside B", async () => {
    const root = tmpDir('gradmax-cli-ext-');
    for (const [name, seed] of [['A', 1], ['B', 2]] as const) {
      fs.mkdirSync(path.join(root, name));
      const model = mlp(seed, 2);
      moveInitializersToExternalFile(model, path.join(root, name), 'model.onnx.data');
      save(model, path.join(root, name), 'model.onnx');
    }
    const inB = path.join(root, 'B');
    const cwd = process.cwd();
    process.chdir(inB);
    try {
      const r = await run(['onnx', 'verify', '../A/model.onnx', 'model.onnx'], inB);
      expect(r.code).toBe(EXIT_FAILED);
      expect(r.err).toMatch(/differs by/);
      expect((await run(['onnx', 'verify', '../A/model.onnx', '../A/model.onnx'], inB)).code).toBe(EXIT_OK);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('gradmax onnx widen -o: only regular files (issue 15 item 2)', () => {
  it('refuses a FIFO, a link to one, a folder and a missing folder; leaves them as they were', async () => {
    const dir = tmpDir('gradmax-cli-fifo-');
    const file = save(mlp(), dir, 'm.onnx');
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    fs.symlinkSync(fifo, path.join(dir, 'stdout-like'));
    fs.mkdirSync(path.join(dir, 'sub'));
    const widen = (o: string) => run(['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '--strategy', 'randomOutgoingZero', '-o', o]);
    for (const [o, re] of [
      [fifo, /refusing to write ".*pipe": it is a FIFO/],
      [path.join(dir, 'stdout-like'), /it is a FIFO/],
      [path.join(dir, 'sub'), /it is a folder/],
      [`${path.join(dir, 'newdir')}/`, /names a folder/],
      [path.join(file, 'x.onnx'), /is not a folder/],
      [path.join(dir, 'missing', 'x.onnx'), /does not exist/],
    ] as const) {
      const r = await widen(o);
      expect(r.code, o).toBe(EXIT_USAGE);
      expect(r.err.trim().split('\n'), o).toHaveLength(1);
      expect(r.err, o).toMatch(re);
    }
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
    expect(fs.lstatSync(path.join(dir, 'stdout-like')).isSymbolicLink()).toBe(true);
    expect(fs.statSync(path.join(dir, 'sub')).isDirectory()).toBe(true);
    expect(leftovers(dir, ['m.onnx', 'pipe', 'stdout-like', 'sub'])).toEqual([]);
  });
});

describe('gradmax onnx widen: a failed run leaves -o as it was (issue 15 item 10)', () => {
  registerStrategy('testBrokenPreserving2', () => ({
    name: 'testBrokenPreserving2',
    functionPreserving: true,
    needs: { moment: false, samples: false, lossOracle: false },
    grow: ({ site, count, rng }) => ({
      incoming: Matrix.from(count, site.fanIn, rng.fillNormal(new Float64Array(count * site.fanIn))),
      incomingBias: new Float64Array(count).fill(1),
      outgoing: Matrix.from(site.fanOut, count, rng.fillNormal(new Float64Array(site.fanOut * count))),
      report: { strategy: 'testBrokenPreserving2', site: site.name, count, notes: [] },
    }),
  }));

  it('bad execution provider, wrongly shaped --inputs, a graph onnxruntime cannot run, failed verification', async () => {
    const dir = tmpDir('gradmax-cli-nowrite-');
    const file = save(mlp(), dir, 'm.onnx');
    fs.writeFileSync(path.join(dir, 'bad.npy'), encodeNpy(new Float32Array(10), [2, 5]));
    // a graph onnxruntime cannot load: an op from an unknown domain after the grown layers
    const b = new GraphBuilder(new Rng(3));
    const x = b.input('x', ['N', 4]);
    const h = b.op('Gemm', [b.op('Relu', [b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])], {}, 1, 'fc1')]), b.weight([5, 3])], {}, 1, 'fc2');
    const y = b.name('y');
    b.nodes.push({ ...b.nodes[0]!, opType: 'Frobnicate', domain: 'com.example', input: [h], output: [y], attribute: [], name: 'custom' });
    b.output(y, ['N', 3]);
    const custom = save(b.model(), dir, 'custom.onnx');
    const out = path.join(dir, 'out.onnx');
    const old = 'previous contents';
    const cases: [string[], number, RegExp][] = [
      [[file, '--execution-provider', 'bogus'], EXIT_USAGE, /execution provider "bogus"/],
      [[file, '--execution-provider', 'cuda'], EXIT_USAGE, /execution provider "cuda"/],
      [[file, '--inputs', path.join(dir, 'bad.npy')], EXIT_USAGE, /input "x".*has shape \[2, 5\]/],
      [[custom], EXIT_USAGE, /onnxruntime cannot load/],
      [[file, '--strategy', 'testBrokenPreserving2'], EXIT_FAILED, /verification failed: .*out\.onnx was not written/],
    ];
    for (const [args, code, re] of cases) {
      fs.writeFileSync(out, old);
      const r = await run(['onnx', 'widen', args[0]!, '--site', 'fc1', '--add', '2', '--strategy', 'randomOutgoingZero', ...args.slice(1), '-o', out]);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.err, args.join(' ')).toMatch(re);
      expect(fs.readFileSync(out, 'utf8'), args.join(' ')).toBe(old);
      expect(leftovers(dir, ['m.onnx', 'bad.npy', 'custom.onnx', 'out.onnx']), args.join(' ')).toEqual([]);
    }
    fs.rmSync(out);
    const failed = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'testBrokenPreserving2', '-o', out]);
    expect(failed.code).toBe(EXIT_FAILED);
    expect(fs.existsSync(out)).toBe(false);
    // and a run that passes replaces it
    const ok = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'randomOutgoingZero', '-o', out]);
    expect(ok.code).toBe(EXIT_OK);
    expect(findSites(loadModel(out))[0]!.units).toBe(7);
    expect(leftovers(dir, ['m.onnx', 'bad.npy', 'custom.onnx', 'out.onnx'])).toEqual([]);
  });

  it('external data: OUT.data is written with OUT, and only when verification passes', async () => {
    const dir = tmpDir('gradmax-cli-nowrite-ext-');
    const model = mlp(4, 'N');
    moveInitializersToExternalFile(model, dir, 'm.data');
    const file = save(model, dir, 'm.onnx');
    const out = path.join(dir, 'w.onnx');
    const bad = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'testBrokenPreserving2', '-o', out]);
    expect(bad.code).toBe(EXIT_FAILED);
    expect(leftovers(dir, ['m.onnx', 'm.data'])).toEqual([]);
    const ok = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '2', '--strategy', 'randomOutgoingZero', '-o', out]);
    expect(ok.code).toBe(EXIT_OK);
    expect(ok.out).toMatch(/\+ w\.onnx\.data/);
    expect(leftovers(dir, ['m.onnx', 'm.data']).sort()).toEqual(['w.onnx', 'w.onnx.data']);
    const v = await run(['onnx', 'verify', file, out]);
    expect(v.code).toBe(EXIT_OK);
  });
});

describe('gradmax onnx widen: duplicate initializer names (issue 15 item 3)', () => {
  it('exits 2 naming the duplicate, writes nothing', async () => {
    const { makeTensor } = await import('@gradmax/onnx');
    const dir = tmpDir('gradmax-cli-dup-');
    const model = mlp();
    const w = model.graph.initializer[0]!;
    model.graph.initializer.push(makeTensor(w.name, w.dataType, w.dims.map(Number), new Float32Array(20)));
    const file = save(model, dir, 'dup.onnx');
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '--strategy', 'randomOutgoingZero', '--no-verify', '-o', path.join(dir, 'w.onnx')]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toMatch(new RegExp(`same name: "${w.name}"`));
    expect(leftovers(dir, ['dup.onnx'])).toEqual([]);
  });
});

describe('gradmax onnx stats: file names of sites that sanitise alike (issue 15 item 5)', () => {
  it('statisticsFileStems keeps plain names and adds a hash where names would meet', async () => {
    const { statisticsFileStems } = await import('../src/onnx/probe-commands.js');
    const stems = statisticsFileStems(['a:b->c:d', 'a;b->c;d', 'fc1->fc2', 'X->y', 'x->Y']);
    expect(stems.get('fc1->fc2')).toBe('fc1-_fc2');
    expect(stems.get('a:b->c:d')).toMatch(/^a_b-_c_d-[0-9a-f]{8}$/);
    expect(stems.get('a;b->c;d')).toMatch(/^a_b-_c_d-[0-9a-f]{8}$/);
    expect(stems.get('a:b->c:d')).not.toBe(stems.get('a;b->c;d'));
    expect(stems.get('X->y')!.toLowerCase()).not.toBe(stems.get('x->Y')!.toLowerCase());
  });

  it('two such sites get two files, each with its own M', async () => {
    const dir = tmpDir('gradmax-cli-stems-');
    const b = new GraphBuilder(new Rng(8));
    const x = b.input('x', ['N', 4]);
    const y1 = b.op('Gemm', [b.op('Relu', [b.op('Gemm', [x, b.weight([4, 5]), b.weight([5])], {}, 1, 'a:b')]), b.weight([5, 3])], {}, 1, 'c:d');
    const y2 = b.op('Gemm', [b.op('Relu', [b.op('Gemm', [x, b.weight([4, 6]), b.weight([6])], {}, 1, 'a;b')]), b.weight([6, 3])], {}, 1, 'c;d');
    const y = b.op('Add', [y1, y2]);
    b.output(y, ['N', 3]);
    const file = save(b.model(), dir, 'two.onnx');
    const rng = new Rng(9);
    fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(Float32Array.from({ length: 40 }, () => rng.normal()), [10, 4]));
    fs.writeFileSync(path.join(dir, 'y.npy'), encodeNpy(Float64Array.from({ length: 10 }, (_, i) => i % 3), [10]));
    const r = await run(['onnx', 'stats', file, '--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce', '--site', 'a:b->c:d', '--site', 'a;b->c;d', '-o', path.join(dir, 'stats')]);
    expect(r.code, r.err).toBe(EXIT_OK);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'stats', 'stats.json'), 'utf8')) as { sites: Record<string, { moment: string }> };
    const files = Object.values(manifest.sites).map((s) => s.moment);
    expect(new Set(files).size).toBe(2);
    const { readNpy } = await import('@gradmax/onnx');
    expect(readNpy(path.join(dir, 'stats', manifest.sites['a:b->c:d']!.moment)).shape).toEqual([3, 4]);
    expect(readNpy(path.join(dir, 'stats', manifest.sites['a;b->c;d']!.moment)).shape).toEqual([3, 4]);
    expect(fs.readdirSync(path.join(dir, 'stats')).sort()).toEqual([...files, 'stats.json'].sort());
  });
});

describe('gradmax onnx widen --data: dims chosen, -o written only after verification', () => {
  it('runs without --dim, prints the dims; a failed verification leaves no output', async () => {
    const dir = tmpDir('gradmax-cli-data-');
    const file = save(mlp(3, 'N'), dir, 'm.onnx');
    const rng = new Rng(5);
    fs.writeFileSync(path.join(dir, 'x.npy'), encodeNpy(Float32Array.from({ length: 48 }, () => rng.normal()), [12, 4]));
    fs.writeFileSync(path.join(dir, 'y.npy'), encodeNpy(Float64Array.from({ length: 12 }, (_, i) => i % 3), [12]));
    const data = ['--data', path.join(dir, 'x.npy'), '--labels', path.join(dir, 'y.npy'), '--loss', 'ce'];
    const out = path.join(dir, 'w.onnx');
    const ok = await run(['onnx', 'widen', file, ...data, '--site', 'fc1', '--add', '2', '--strategy', 'gradmax', '-o', out]);
    expect(ok.code, ok.err).toBe(EXIT_OK);
    expect(ok.out).toMatch(/verification \(cpu, 8 samples in 1 run, input scales 1 and 10, dims N=8 \(batch\)/);
    expect(ok.out).toMatch(/wrote .*w\.onnx/);
    fs.rmSync(out);
    const bad = await run(['onnx', 'widen', file, ...data, '--site', 'fc1', '--add', '2', '--strategy', 'testBrokenPreserving2', '-o', out]);
    expect(bad.code).toBe(EXIT_FAILED);
    expect(bad.err).toMatch(/was not written/);
    expect(leftovers(dir, ['m.onnx', 'x.npy', 'y.npy'])).toEqual([]);
  });
});

describe('gradmax onnx widen: a declared input too large to draw (issue 15 item 12, verification part)', () => {
  it('exits 2 with a typed error, leaves no output', async () => {
    const dir = tmpDir('gradmax-cli-huge-');
    const file = save(mlp(1, 100_000_000), dir, 'huge.onnx');
    const r = await run(['onnx', 'widen', file, '--site', 'fc1', '--add', '1', '--strategy', 'randomOutgoingZero', '-o', path.join(dir, 'w.onnx')]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/graph input "x" of shape \[100000000, 4\] has 400000000 elements/);
    expect(leftovers(dir, ['huge.onnx'])).toEqual([]);
  });
});
