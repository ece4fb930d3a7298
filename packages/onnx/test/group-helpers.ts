/** Builders for the architecture patterns of real exported models, and a grow-and-verify check for groups. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { Matrix, Rng, type GrowthSite, type NewUnits } from '@gradmax/core';
import { findGroup, findGroups, groupGrowthSite, loadModel, saveModel, verifyModels, widenGroup, type OnnxGroup, type VerifyReport } from '@gradmax/onnx';
import { GraphBuilder, queueOnnxCheck } from './helpers.js';
import { makeUnits, type UnitsKind } from './grow-helpers.js';

/** BatchNormalization with non-trivial statistics. */
export function bn(b: GraphBuilder, x: string, c: number, eps = 1e-3): string {
  const scale = b.tensor([c], Array.from({ length: c }, () => 0.5 + b.rng.uniform()));
  const bias = b.weight([c], 0.1);
  const mean = b.weight([c], 0.1);
  const v = b.tensor([c], Array.from({ length: c }, () => 0.5 + b.rng.uniform()));
  return b.op('BatchNormalization', [x, scale, bias, mean, v], { epsilon: eps });
}

/** Conv (+ bias) with OIHW-style weight `[o, i/group, ...kernel]`. */
export function conv(b: GraphBuilder, x: string, o: number, i: number, kernel: number[], attrs: Record<string, number[] | number> = {}, name?: string): string {
  const group = typeof attrs.group === 'number' ? attrs.group : 1;
  return b.op('Conv', [x, b.weight([o, i / group, ...kernel], 0.4), b.weight([o], 0.1)], attrs, 1, name);
}

/** Units of a function-preserving kind for a group with `multiple` (split copies a unit of the same conv group). */
export function groupUnits(site: GrowthSite, k: number, kind: UnitsKind, multiple = 1): NewUnits {
  if (kind !== 'split' || multiple === 1) return makeUnits(site, k, kind);
  const per = k / multiple;
  const block = site.units / multiple;
  const base = makeUnits(site, k, 'outgoing-zero');
  const sourceUnits = new Int32Array(k);
  const copies = new Array<number>(site.units).fill(1);
  for (let j = 0; j < k; j++) {
    sourceUnits[j] = Math.floor(j / per) * block + (j % per) % block;
    copies[sourceUnits[j]!]!++;
  }
  const existingOutgoingScale = Float64Array.from(copies, (c) => 1 / c);
  const incoming = Matrix.zeros(k, site.fanIn);
  const outgoing = Matrix.zeros(site.fanOut, k);
  const incomingBias = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const s = sourceUnits[j]!;
    for (let i = 0; i < site.fanIn; i++) incoming.data[j * site.fanIn + i] = site.incoming.data[s * site.fanIn + i]!;
    incomingBias[j] = site.incomingBias?.[s] ?? 0;
    for (let r = 0; r < site.fanOut; r++) outgoing.data[r * k + j] = site.outgoing.data[r * site.units + s]! * existingOutgoingScale[s]!;
  }
  return { ...base, incoming, outgoing, incomingBias, sourceUnits, existingOutgoingScale };
}

/** The growable group named `name` (fails the test with the reason otherwise). */
export function growable(groups: OnnxGroup[], name: string): OnnxGroup {
  const g = groups.find((x) => x.name === name || x.members.producers.includes(name));
  expect(g, `group ${name} in ${groups.map((x) => x.name).join(', ')}`).toBeDefined();
  expect(g!.growable, g!.reason).toBe(true);
  return g!;
}

/** Loads `file`, widens group `name` by `k` units of `kind`, saves, checks the input is untouched, verifies in onnxruntime. */
export async function growGroupAndCheck(file: string, name: string, k: number, kind: UnitsKind | ((site: GrowthSite) => NewUnits), dims: Record<string, number> = {}, fp16 = false): Promise<{ report: VerifyReport; group: OnnxGroup; outFile: string }> {
  const before = fs.readFileSync(file);
  const model = loadModel(file);
  const group = findGroup(model, name);
  expect(group.growable, group.reason).toBe(true);
  const site = groupGrowthSite(model, group);
  const units = typeof kind === 'function' ? kind(site) : groupUnits(site, k, kind, group.multiple ?? 1);
  widenGroup(model, group, units);
  const outFile = path.join(path.dirname(file), `widened-${Math.random().toString(36).slice(2)}.onnx`);
  saveModel(model, outFile);
  expect(fs.readFileSync(file).equals(before)).toBe(true);
  const widened = loadModel(outFile);
  const after = findGroups(widened).find((g) => g.members.producers[0] === group.members.producers[0]);
  expect(after?.units).toBe(group.units! + units.incoming.rows);
  const report = await verifyModels(file, outFile, { dims: { N: 2, ...dims }, seed: 7 });
  // Verification inputs include ×10-scale samples (outputs in the hundreds): 1e-5 absolute or relative to the output scale.
  // FP16: 1e-2 relative (the target of the widening benchmarks).
  for (const o of report.outputs) expect(fp16 ? o.maxRel : Math.min(o.maxAbs, o.maxRel), `${o.name} abs/rel diff after growing ${name} (${typeof kind === 'string' ? kind : 'custom'})`).toBeLessThanOrEqual(fp16 ? 1e-2 : 1e-5);
  queueOnnxCheck(outFile);
  return { report, group, outFile };
}

/** Mean softmax cross-entropy of `[N x classes]` logits against integer labels (the probe's `ce-logits` loss). */
export function meanCrossEntropy(logits: Float64Array, classes: number, labels: number[]): number {
  let total = 0;
  for (let n = 0; n < labels.length; n++) {
    const row = logits.subarray(n * classes, (n + 1) * classes);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    total += lse - row[labels[n]!]!;
  }
  return total / labels.length;
}
