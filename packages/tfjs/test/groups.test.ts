import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import '@gradmax/strategies/register';
import { allAtOnce } from '@gradmax/core';
import {
  GrowthController,
  collectGroupStatistics,
  collectGrowthStatistics,
  collectStatistics,
  findGrowthSites,
  grow,
  growthCallback,
  layerRoles,
  scheduledSites,
  setupBackend,
  type ChannelGroup,
} from '@gradmax/tfjs';
import { checkGroup } from './group-check.js';
import { maxAbsDiff, oneHotTargets, outputOf, randomTensor, relativeError, perturbBatchNorm } from './helpers.js';
import { cnnWithBnPool, mlpWithBn } from './models.js';
import { densenetStyle, imageToImageModel, mobilenetV2Style, resnetStyle, seStyle } from './architectures.js';
import { ARCHS, batchFor, logits, mse } from './group-archs.js';

// Every strategy × every group pattern (function preservation, refusals) runs on every backend in group-strategies.test.ts.

describe('channel groups', () => {
  beforeAll(async () => {
    await setupBackend('cpu', { log: false, fastCpuConvBackward: true });
  });

  it('ResNet-style: a residual stage is one group (producers joined by Add, every block input a consumer); inner convs are sites', () => {
    const scan = findGrowthSites(resnetStyle());
    const stage = scan.groups[0]!;
    expect(stage.producers.map((m) => m.name)).toEqual(['stem', 's1b1_conv2', 's1b2_conv2']);
    expect(stage.joins.map((m) => m.name)).toEqual(['s1b1_add', 's1b2_add']);
    expect(stage.consumers.map((m) => m.name)).toEqual(['s1b1_conv1', 's1b2_conv1', 's2b1_conv1', 's2b1_proj']);
    expect(stage.passThrough.map((m) => m.name)).toEqual(['stem_bn', 'stem_relu', 's1b1_bn2', 's1b1_out', 's1b2_bn2', 's1b2_out']);
    expect(stage.activation).toEqual({ name: 'linear·relu1·Add', f0: 0, df0: 1 });
    expect(scan.sites.map((s) => s.name)).toEqual(['s1b1_conv1->s1b1_conv2', 's1b2_conv1->s1b2_conv2', 's2b1_conv1->s2b1_conv2']);
    expect(scan.notGrowable).toEqual([expect.objectContaining({ layer: 'logits', reason: expect.stringMatching(/model output/) })]);
  });

  it('DenseNet-style: Concatenate puts each producer at its offset in every later consumer', () => {
    const scan = findGrowthSites(densenetStyle());
    const d1 = scan.groups.find((g) => g.producers[0]!.name === 'd1_conv')!;
    expect(d1.consumers.map((m) => [m.name, m.offset, m.channels])).toEqual([['d2_conv', 4, 7], ['d3_conv', 4, 10], ['trans_conv', 4, 13]]);
    expect(d1.joins.map((m) => [m.name, m.offset, m.channels])).toEqual([['d1_cat', 4, 7], ['d2_cat', 4, 10], ['d3_cat', 4, 13]]);
  });

  it('squeeze-excitation: the gate producer joins the group; the squeeze path is a consumer through global pooling', () => {
    const g = findGrowthSites(seStyle()).groups[0]!;
    expect(g.producers.map((m) => m.name)).toEqual(['conv', 'se_expand']);
    expect(g.passThrough.map((m) => [m.name, m.positions, m.outPositions])).toEqual([['conv_relu', 1, 1], ['se_squeeze', 1, 1], ['se_reshape', 1, 1]]);
    // sigmoid(0) = 0.5 on the gate, but the product with the conv's new channel (relu1(0) = 0) is 0; the conv's
    // channel reaches the squeeze path with derivative 1 (0.5 through the gate).
    expect(g.activation.f0).toBe(0);
    expect(g.activation.df0).toBe(1);
  });

  it('every growable layer class of the rule table is grown by some test model', () => {
    const used = new Set<string>();
    for (const arch of ARCHS) for (const layer of arch.build().layers) used.add(layer.getClassName());
    const roles = layerRoles();
    const untested = Object.keys(roles).filter((c) => !roles[c]!.includes('refused') && !used.has(c) && !['ThresholdedReLU', 'Softmax'].includes(c));
    expect(untested).toEqual([]);
  });

  it('refusals name the layer and the reason (model input in a join, LayerNormalization, Softmax, custom layer)', () => {
    const x0 = tfl.input({ shape: [4] });
    const a = tfl.layers.dense({ units: 4, name: 'a' }).apply(x0) as tfl.SymbolicTensor;
    const add = tfl.layers.add({ name: 'add' }).apply([a, x0]) as tfl.SymbolicTensor;
    const b = tfl.layers.dense({ units: 3, name: 'b' }).apply(add) as tfl.SymbolicTensor;
    const ln = tfl.layers.layerNormalization({ name: 'ln' }).apply(b) as tfl.SymbolicTensor;
    const c = tfl.layers.dense({ units: 3, name: 'c' }).apply(ln) as tfl.SymbolicTensor;
    const sm = tfl.layers.softmax({ name: 'sm' }).apply(c) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, name: 'out' }).apply(sm) as tfl.SymbolicTensor;
    const reasons = Object.fromEntries(findGrowthSites(tfl.model({ inputs: x0, outputs: out })).notGrowable.map((n) => [n.layer, n.reason]));
    expect(reasons['a']).toMatch(/join "add" adds the model input/);
    expect(reasons['b']).toMatch(/LayerNormalization "ln" normalises over the channel axis/);
    expect(reasons['c']).toMatch(/layer "sm": Softmax normalises over the channel axis/);
  });

  it('the growth matrix of a group equals the pair statistics where both apply (independent computations)', () => {
    for (const [build, site, shape, classes] of [[mlpWithBn, 'h1->h2', [5], 3], [cnnWithBnPool, 'c1->c2', [8, 8, 2], 3], [cnnWithBnPool, 'c2->out', [8, 8, 2], 3]] as const) {
      const model = build();
      perturbBatchNorm(model, 3);
      const pair = findGrowthSites(model).sites.find((s) => s.name === site)!;
      const member = (name: string, className: string, role: 'producer' | 'pass' | 'consumer', channels: number, positions = 1, outPositions = positions) => ({ name, className, role, offset: 0, channels, positions, outPositions });
      const n = pair.units;
      const flatten = pair.between.find((b) => b.role === 'flatten');
      const P = flatten ? (model.getLayer(flatten.name).outputShape as number[])[1]! / n : 1;
      let positions = 1;
      const passThrough = pair.between.map((b) => {
        const m = member(b.name, b.className, 'pass', n, positions, b.role === 'flatten' ? P : positions);
        if (b.role === 'flatten') positions = P;
        return m;
      });
      const group: ChannelGroup = {
        name: site,
        units: n,
        producers: [member(pair.current, model.getLayer(pair.current).getClassName(), 'producer', n)],
        passThrough,
        joins: [],
        consumers: [member(pair.next, model.getLayer(pair.next).getClassName(), 'consumer', n, positions)],
        activation: pair.activation,
      };
      const xs = randomTensor([5, ...shape], 7);
      const ys = oneHotTargets(5, classes, 8);
      const fast = collectStatistics(model, [pair], { xs, ys }, { loss: 'categoricalCrossentropy' }).get(site)!.snapshot().moment;
      const virtual = collectGroupStatistics(model, group, { xs, ys }, { loss: 'categoricalCrossentropy' }).snapshot().moment;
      expect([virtual.rows, virtual.cols]).toEqual([fast.rows, fast.cols]);
      expect(relativeError(virtual.data, fast.data)).toBeLessThan(1e-5);
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });

  it('the fast pair method and the virtual-unit method give the same group statistics (and the pair method is chosen where it applies)', () => {
    const expectPairs: Record<string, boolean> = { 'ResNet-18-style (two identity blocks, a projection block)': true, 'DenseNet-style dense block (Concatenate)': true, 'InceptionV3-style modules (four-branch Concatenate)': true, 'MobileNetV2-style inverted residuals (depthwise, ReLU6-style)': true };
    for (const arch of ARCHS.slice(0, 5)) {
      const model = arch.build();
      perturbBatchNorm(model, 17);
      const { xs, ys } = batchFor(arch, 3, 61);
      for (const g of findGrowthSites(model).groups) {
        const virtual = collectGroupStatistics(model, g, { xs, ys }, { loss: arch.loss, method: 'virtual' }).snapshot().moment;
        if (!expectPairs[arch.name]) {
          expect(() => collectGroupStatistics(model, g, { xs, ys }, { loss: arch.loss, method: 'pairs' })).toThrow(/cannot be split into pair statistics/);
          continue;
        }
        const pairs = collectGroupStatistics(model, g, { xs, ys }, { loss: arch.loss, method: 'pairs' }).snapshot().moment;
        expect(relativeError(pairs.data, virtual.data)).toBeLessThan(2e-5);
      }
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });

  it('collectGrowthStatistics: one shared pass for all sites and pair-able groups gives each one\'s own statistics', () => {
    for (const arch of [ARCHS[0]!, ARCHS[4]!]) {
      const model = arch.build();
      perturbBatchNorm(model, 19);
      const { xs, ys } = batchFor(arch, 3, 71);
      const scan = findGrowthSites(model);
      const before = tf.memory().numTensors;
      const all = collectGrowthStatistics(model, [...scan.sites, ...scan.groups], { xs, ys }, { loss: arch.loss });
      expect(tf.memory().numTensors).toBe(before);
      expect([...all.keys()].sort()).toEqual([...scan.sites, ...scan.groups].map((t) => t.name).sort());
      for (const site of scan.sites) {
        const own = collectStatistics(model, [site], { xs, ys }, { loss: arch.loss }).get(site.name)!.snapshot().moment;
        expect(relativeError(all.get(site.name)!.moment.data, own.data)).toBeLessThan(1e-6);
      }
      for (const g of scan.groups) {
        const own = collectGroupStatistics(model, g, { xs, ys }, { loss: arch.loss }).snapshot().moment;
        expect(relativeError(all.get(g.name)!.moment.data, own.data)).toBeLessThan(1e-6);
      }
      model.dispose();
      tf.dispose([xs, ys]);
    }
  });

  for (const arch of ARCHS) {
    describe(arch.name, () => {
      it('lists the expected groups', () => {
        const model = arch.build();
        expect(findGrowthSites(model).groups.map((g) => g.name)).toEqual(arch.groups);
        model.dispose();
      });

      it("GradMax's gradient from autodiff equals f'(0)·ΩᵀM for every group", () => {
        const model = arch.build();
        perturbBatchNorm(model, 13);
        const { xs, ys } = batchFor(arch, 5, 21);
        for (const name of arch.groups) checkGroup(model, name, xs, ys, arch.loss);
        model.dispose();
        tf.dispose([xs, ys]);
      });
    });
  }

  it('optimizer slots follow every member (Adam), training continues, and grown groups save and load', async () => {
    const model = resnetStyle();
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const arch = ARCHS[0]!;
    const { xs, ys } = batchFor(arch, 4, 31);
    const soft = oneHotTargets(4, 3, 3);
    await model.fit(xs, soft, { epochs: 1, batchSize: 4, verbose: 0 });
    const baseline = tf.memory().numTensors;
    grow(model, { site: arch.groups[0]!, units: 2, strategy: 'gradmax', batch: { xs, ys }, loss: logits });
    expect(tf.memory().numTensors).toBe(baseline);
    const optimizer = model.optimizer as unknown as { accumulatedFirstMoment: { variable: tf.Variable }[] };
    const trainable = (model as unknown as { collectedTrainableWeights: tfl.LayerVariable[] }).collectedTrainableWeights;
    trainable.forEach((w, i) => expect(optimizer.accumulatedFirstMoment[i]!.variable.shape).toEqual(w.shape));
    const h = await model.fit(xs, soft, { epochs: 1, batchSize: 4, verbose: 0 });
    expect(Number.isFinite(h.history['loss']![0] as number)).toBe(true);
    const expected = outputOf(model, xs);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(maxAbsDiff(outputOf(loaded, xs), expected)).toBe(0);
    expect((loaded.getLayer('stem').getConfig() as { filters: number }).filters).toBe(6);
    loaded.dispose();
    model.dispose();
    tf.dispose([xs, ys, soft]);
  });

  it('squeeze-excitation saves and loads after growth (Reshape target follows)', async () => {
    const model = seStyle();
    grow(model, { site: 'conv+se_expand->se_reduce+next', units: 3, strategy: 'random', seed: 1 });
    const xs = randomTensor([2, 6, 6, 3], 3);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(maxAbsDiff(outputOf(loaded, xs), outputOf(model, xs))).toBe(0);
    expect((loaded.getLayer('se_reshape').getConfig() as { targetShape: number[] }).targetShape).toEqual([1, 1, 7]);
    loaded.dispose();
    model.dispose();
    xs.dispose();
  });

  it('GrowthController and the fit callback take groups like sites', async () => {
    const model = mobilenetV2Style();
    model.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
    const arch = ARCHS[3]!;
    const { xs, ys } = batchFor(arch, 4, 41);
    const soft = oneHotTargets(4, 3, 5);
    const sites = scheduledSites(model);
    expect(sites.map((s) => s.name)).toContain(arch.groups[0]);
    const schedule = allAtOnce({ sites, start: 1, every: 1, times: 1, amount: { units: 1 } });
    const controller = new GrowthController(model, { schedule, strategy: 'gradmax', growBatch: { xs, ys }, loss: logits });
    const callback = growthCallback(model, controller);
    await model.fit(xs, soft, { epochs: 3, batchSize: 4, verbose: 0, callbacks: [callback] });
    expect(controller.history.map((r) => r.site)).toEqual(sites.map((s) => s.name));
    expect(findGrowthSites(model).groups[0]!.units).toBe(5);
    model.dispose();
    tf.dispose([xs, ys, soft]);
  });

  it("strategies that read gradient rows g, f'(0) = 0 (GradMax) and f(0) ≠ 0 groups are refused with typed errors; nothing changes", () => {
    const { xs, ys } = batchFor(ARCHS[0]!, 3, 51);
    const model = resnetStyle();
    const before = outputOf(model, xs);
    expect(() => grow(model, { site: ARCHS[0]!.groups[0]!, units: 1, strategy: 'firefly', batch: { xs, ys }, loss: logits })).toThrow(/firefly on group .* per-example gradient rows g .*north/);
    expect(maxAbsDiff(outputOf(model, xs), before)).toBe(0);
    model.dispose();
    tf.dispose([xs, ys]);
    const dilated = imageToImageModel(2);
    const b = batchFor(ARCHS[7]!, 2, 52);
    // Dilated Conv2D layers have GradMax statistics (dilated-statistics.test.ts); 3-D ones are refused there.
    const dilatedBefore = outputOf(dilated, b.xs);
    grow(dilated, { site: 'dilated->separable', units: 1, strategy: 'gradmax', batch: b, loss: mse });
    expect(maxAbsDiff(outputOf(dilated, b.xs), dilatedBefore)).toBeLessThan(1e-5);
    dilated.dispose();
    tf.dispose([b.xs, b.ys]);
    const relu = tfl.input({ shape: [3] });
    const ra = tfl.layers.dense({ units: 2, activation: 'relu', name: 'ra' }).apply(relu) as tfl.SymbolicTensor;
    const rb = tfl.layers.dense({ units: 2, activation: 'relu', name: 'rb' }).apply(relu) as tfl.SymbolicTensor;
    const rsum = tfl.layers.add({ name: 'rsum' }).apply([ra, rb]) as tfl.SymbolicTensor;
    const plain = tfl.model({ inputs: relu, outputs: tfl.layers.dense({ units: 2, name: 'ro' }).apply(rsum) as tfl.SymbolicTensor });
    const rx = randomTensor([3, 3], 53);
    const ry = oneHotTargets(3, 2, 54);
    expect(findGrowthSites(plain).groups[0]!.activation.df0).toBe(0);
    expect(() => grow(plain, { site: 'ra+rb->ro', units: 1, strategy: 'gradmax', batch: { xs: rx, ys: ry }, loss: 'meanSquaredError' })).toThrow(/f'\(0\) = 0.*relu1/);
    plain.dispose();
    tf.dispose([rx, ry]);
    const x0 = tfl.input({ shape: [3] });
    const a = tfl.layers.dense({ units: 2, activation: 'sigmoid', name: 'a' }).apply(x0) as tfl.SymbolicTensor;
    const c = tfl.layers.dense({ units: 2, activation: 'sigmoid', name: 'c' }).apply(x0) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'sum' }).apply([a, c]) as tfl.SymbolicTensor;
    const sig = tfl.model({ inputs: x0, outputs: tfl.layers.dense({ units: 2, name: 'o' }).apply(sum) as tfl.SymbolicTensor });
    expect(findGrowthSites(sig).groups[0]!.activation.f0).toBe(1);
    expect(() => grow(sig, { site: 'a+c->o', units: 1, strategy: 'random', seed: 1 })).toThrow(/f\(0\) = 1 ≠ 0.*randomOutgoingZero/);
    sig.dispose();
  });
});
