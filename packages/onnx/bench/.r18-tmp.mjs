import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
const onnx = await import('/work/wt-probe/packages/onnx/dist/index.js');
const P = await import('/work/wt-probe/packages/onnx/dist/probe/index.js');
const file = process.env.HOME + '/.cache/gradmax/corpus/' + (process.argv[2] ?? 'resnet18-op17.onnx');
const th = { intraOpNumThreads: 1, interOpNumThreads: 1 };
const B = 32;
const x = new ort.Tensor('float32', Float32Array.from({ length: B * 3 * 64 * 64 }, () => Math.random() - 0.5), [B, 3, 64, 64]);
const labels = new ort.Tensor('int64', BigInt64Array.from({ length: B }, (_, i) => BigInt(i % 10)), [B]);
const time = async (s, feeds, n = 3) => { await s.run(feeds); const t = []; for (let k = 0; k < n; k++) { const a = performance.now(); await s.run(feeds); t.push(performance.now() - a); } t.sort((a, b) => a - b); return t[1]; };
const plain = await ort.InferenceSession.create(file, th);
const inf = await time(plain, { [plain.inputNames[0]]: x });
console.log('inference', inf.toFixed(1));
const vjp = await P.buildVjpModel(fromBinary(ModelProtoSchema, fs.readFileSync(file)), { wrt: [plain.inputNames[0]], loss: { kind: 'ce-logits' } });
const vs = await P.createProbeSession(vjp.model, { sessionOptions: th });
console.log('backward (input grad)', (await time(vs, { [plain.inputNames[0]]: x, [vjp.loss.labelsInput]: labels })).toFixed(1));
const model = onnx.loadModel(file);
const sites = onnx.findSites(model).filter((s) => s.growable).map((s) => s.name);
for (const s of sites.slice(0, Number(process.env.NSITES ?? 99))) {
  const probe = await P.buildProbe(model, { sites: [s], loss: { kind: 'ce-logits' } });
  const ps = await P.createProbeSession(probe.model, { sessionOptions: th });
  const t = await time(ps, { [probe.inputs[0]]: x, [probe.labelsInput]: labels });
  const geo = probe.outputs[0].site.geometry;
  console.log(s.slice(0, 60), probe.outputs[0].layout, JSON.stringify(probe.outputs[0].shape), geo ? `in ${geo.inChannels}x${geo.inputSize} mid ${geo.midChannels}x${geo.midSize} out ${geo.outChannels}x${geo.outputSize} k1 ${geo.kernel1} s1 ${geo.stride1} k2 ${geo.kernel2} s2 ${geo.stride2}` : '', t.toFixed(1), (t / inf).toFixed(2));
  await ps.release();
}
