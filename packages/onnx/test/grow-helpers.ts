/** Shared helpers for widening tests: hand-made NewUnits of each function-preserving kind and an ORT check. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { Matrix, Rng, type GrowthSite, type NewUnits } from '@gradmax/core';
import { findSite, findSites, growthSite, loadModel, saveModel, serializeModel, verifyModels, widen, type OnnxModel, type VerifyReport } from '@gradmax/onnx';
import { queueOnnxCheck, tmpDir } from './helpers.js';

export type UnitsKind = 'incoming-zero' | 'outgoing-zero' | 'split';

/** New units of a function-preserving kind, built independently of the strategies package. */
export function makeUnits(site: GrowthSite, k: number, kind: UnitsKind, seed = 5): NewUnits {
  const rng = new Rng(seed);
  const incoming = Matrix.zeros(k, site.fanIn);
  const outgoing = Matrix.zeros(site.fanOut, k);
  const incomingBias = new Float64Array(k);
  const report = { strategy: kind, site: site.name, count: k, notes: [] };
  if (kind === 'incoming-zero') {
    rng.fillNormal(outgoing.data);
    return { incoming, outgoing, incomingBias, report };
  }
  if (kind === 'outgoing-zero') {
    rng.fillNormal(incoming.data);
    if (site.incomingBias) rng.fillNormal(incomingBias);
    return { incoming, outgoing, incomingBias, report };
  }
  // split (Net2Net-style): copy k distinct existing units, halve their outgoing weights
  const sourceUnits = new Int32Array(k);
  const existingOutgoingScale = new Float64Array(site.units).fill(1);
  for (let j = 0; j < k; j++) {
    const s = j % site.units;
    sourceUnits[j] = s;
    for (let i = 0; i < site.fanIn; i++) incoming.data[j * site.fanIn + i] = site.incoming.data[s * site.fanIn + i]!;
    incomingBias[j] = site.incomingBias?.[s] ?? 0;
  }
  const copies = new Array<number>(site.units).fill(1);
  for (const s of sourceUnits) copies[s]!++;
  for (let s = 0; s < site.units; s++) existingOutgoingScale[s] = 1 / copies[s]!;
  for (let j = 0; j < k; j++) {
    const s = sourceUnits[j]!;
    for (let r = 0; r < site.fanOut; r++) outgoing.data[r * k + j] = site.outgoing.data[r * site.units + s]! * existingOutgoingScale[s]!;
  }
  return { incoming, outgoing, incomingBias, existingOutgoingScale, sourceUnits, report };
}

/** Saves `model` to a temp dir, returns the path. */
export function saveTemp(model: OnnxModel, name = 'orig.onnx', dir = tmpDir()): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, serializeModel(model));
  return file;
}

export interface GrowCheck {
  report: VerifyReport;
  widened: OnnxModel;
  outFile: string;
}

/**
 * Loads `file`, widens `siteName` by `k` with units of `kind`, saves, verifies in onnxruntime and (when available)
 * with onnx.checker; checks that the original file is untouched and existing weights are bit-identical.
 */
export async function growAndCheck(file: string, siteName: string, k: number, kind: UnitsKind | ((site: GrowthSite) => NewUnits), options: { dims?: Record<string, number>; fp16?: boolean } = {}): Promise<GrowCheck> {
  const before = fs.readFileSync(file);
  const model = loadModel(file);
  const site = findSite(model, siteName);
  expect(site.growable, site.reason).toBe(true);
  const gs = growthSite(model, site);
  const units = typeof kind === 'function' ? kind(gs) : makeUnits(gs, k, kind);
  const oldWeights = new Map<string, { bytes: Uint8Array; dims: number[] }>();
  for (const t of model.graph.initializer) oldWeights.set(t.name, { bytes: model.tensorBytes(t).slice(), dims: t.dims.map(Number) });
  widen(model, [{ site: site.name, newUnits: units }]);
  const outFile = path.join(path.dirname(file), `widened-${Math.random().toString(36).slice(2)}.onnx`);
  saveModel(model, outFile);
  expect(fs.readFileSync(file)).toEqual(before);
  const widened = loadModel(outFile);
  // the site is wider now
  const after = findSites(widened).find((s) => s.current === site.current);
  expect(after?.units).toBe(site.units! + units.incoming.rows);
  // existing weights are bit-identical (for unscaled units)
  const scaled = units.existingOutgoingScale?.some((s) => s !== 1);
  for (const t of widened.graph.initializer) {
    const old = oldWeights.get(t.name);
    // weights only: int64 Reshape targets legitimately change
    if (!old || t.dataType === 7 || (scaled && site.nextWeightShape && t === widened.weight(widened.graph.node.find((n) => (n.name || '') === site.next)?.input[1] ?? '')?.tensor)) continue;
    expectPrefixEmbedding(old.bytes, widened.tensorBytes(t), t.name, old.dims, t.dims.map(Number));
  }
  const report = await verifyModels(file, outFile, { dims: options.dims ?? { N: 3 }, seed: 11 });
  for (const o of report.outputs) {
    if (options.fp16) expect(o.maxRel, `${o.name} rel diff`).toBeLessThanOrEqual(1e-2);
    // inputs at scale 10 give outputs in the hundreds, where one float32 rounding step exceeds 1e-5 absolute
    else expect(Math.min(o.maxAbs, o.maxRel), `${o.name} abs/rel diff`).toBeLessThanOrEqual(1e-5);
  }
  queueOnnxCheck(outFile);
  return { report, widened, outFile };
}

/**
 * Existing elements are untouched: when exactly one axis grew, the old tensor equals the leading slice of the new one
 * along that axis, element bytes compared one by one.
 */
function expectPrefixEmbedding(old: Uint8Array, grown: Uint8Array, name: string, oldDims: number[], newDims: number[]): void {
  if (oldDims.join() === newDims.join()) {
    expect(Buffer.from(grown).equals(Buffer.from(old)), `tensor ${name} unchanged`).toBe(true);
    return;
  }
  if (oldDims.length !== newDims.length) return; // broadcast bias expanded to one value per unit
  const grownAxes = oldDims.map((d, a) => (d !== newDims[a] ? a : -1)).filter((a) => a >= 0);
  expect(grownAxes.length, `tensor ${name} grew along one axis`).toBe(1);
  const count = oldDims.reduce((a, b) => a * b, 1);
  const size = old.length / count;
  for (let flat = 0; flat < count; flat++) {
    let rem = flat;
    let target = 0;
    for (let a = 0; a < oldDims.length; a++) {
      const stride = oldDims.slice(a + 1).reduce((x, y) => x * y, 1);
      const idx = Math.floor(rem / stride);
      rem -= idx * stride;
      target = target * newDims[a]! + idx;
    }
    for (let b = 0; b < size; b++) {
      if (grown[target * size + b] !== old[flat * size + b]) expect.fail(`tensor ${name}: element ${flat} changed`);
    }
  }
}
