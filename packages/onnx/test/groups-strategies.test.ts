/**
 * Every function-preserving strategy of the catalog on every group pattern, through the public `growModel`,
 * verified in onnxruntime. Strategies that need statistics get synthetic ones of the group's shape (function
 * preservation does not depend on their values).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Matrix, Rng, type SiteStatistics } from '@gradmax/core';
import { strategyCatalog } from '@gradmax/strategies';
import '@gradmax/strategies/register';
import { findGroup, growModel, loadModel, serializeModel, verifyModels } from '@gradmax/onnx';
import { flushOnnxChecks, queueOnnxCheck, tmpDir } from './helpers.js';
import { denseBlock, mbconv1Residual, mbconvSE, residualLoops, resnetStage, resnextBlock, transformerBlock } from './group-patterns.js';

const dir = tmpDir('gradmax-group-strategies-');
afterAll(() => {
  expect(flushOnnxChecks()).toBe('');
});

const PATTERNS = [
  { name: 'ResNet stage', build: resnetStage, groups: ['stem', 'b3.conv2'], opset: 13, dims: {} },
  { name: 'inverted residual + SE', build: mbconvSE, groups: ['expand', 'stem'], opset: 13, dims: { H: 5, W: 6 } },
  { name: 'MBConv1 residual (projection reads and writes the stage)', build: mbconv1Residual, groups: ['stem'], opset: 13, dims: {} },
  { name: 'conv and MatMul layers that read and write their group', build: residualLoops, groups: ['stem', 'fc0'], opset: 13, dims: {} },
  { name: 'DenseNet block', build: denseBlock, groups: ['conv0', 'l1.conv2'], opset: 13, dims: {} },
  { name: 'grouped conv', build: resnextBlock, groups: ['reduce', 'grouped'], opset: 13, dims: {} },
  { name: 'transformer FFN', build: transformerBlock, groups: ['ffn.up'], opset: 17, dims: { S: 3 } },
];

function synthetic(fanOut: number, fanIn: number, seed: number): SiteStatistics {
  const rng = new Rng(seed);
  const moment = Matrix.zeros(fanOut, fanIn);
  rng.fillNormal(moment.data);
  const h = Matrix.zeros(32, fanIn);
  const g = Matrix.zeros(32, fanOut);
  rng.fillNormal(h.data);
  rng.fillNormal(g.data);
  return { moment, count: 32, samples: { h, g, weight: 1 / 32 } };
}

describe.each(PATTERNS)('every function-preserving strategy on a group: $name', ({ name, build, groups, opset, dims }) => {
  const file = path.join(dir, `${name.replace(/\W+/g, '-')}.onnx`);
  fs.writeFileSync(file, serializeModel(build().model(opset)));
  for (const entry of strategyCatalog.filter((e) => e.functionPreserving)) {
    it(entry.name, async () => {
      for (const groupName of groups) {
        const model = loadModel(file);
        const group = findGroup(model, groupName);
        expect(group.growable, group.reason).toBe(true);
        const count = 2 * (group.multiple ?? 1);
        // Grouped convs: one matrix per share of new units (conv group), as computeGroupStatistics returns them.
        const G = group.multiple ?? 1;
        const statistics = { ...synthetic(group.fanOut!, group.fanIn!, 3), ...(G > 1 ? { shares: Array.from({ length: G }, (_, s) => synthetic(group.fanOut!, group.fanIn!, 10 + s)) } : {}) };
        const grow = () => growModel(model, [{ site: groupName, count, statistics }], { strategy: entry.name, seed: 5 });
        if (entry.name === 'net2net' && (group.multiple ?? 1) > 1) {
          // Copies must stay in their source's conv group; random sources rarely split evenly: a clear error, no output.
          expect(grow).toThrow(/conv group/);
          continue;
        }
        const [res] = grow();
        expect(res!.unitsAfter).toBe(group.units! + count);
        const out = path.join(dir, `${name.replace(/\W+/g, '-')}-${entry.name}-${groupName}.onnx`);
        fs.writeFileSync(out, serializeModel(model));
        const report = await verifyModels(file, out, { dims: { N: 2, ...dims }, seed: 9 });
        for (const o of report.outputs) expect(Math.min(o.maxAbs, o.maxRel), `${entry.name} on ${groupName}: ${o.name}`).toBeLessThanOrEqual(1e-5);
        queueOnnxCheck(out);
      }
    });
  }
});
