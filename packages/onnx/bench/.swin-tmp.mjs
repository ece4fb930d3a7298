import * as fs from 'node:fs';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
const proto = fromBinary(ModelProtoSchema, fs.readFileSync(process.env.HOME + '/.cache/gradmax/corpus/swin_t-op17.onnx'));
const g = proto.graph;
const n = g.node.find((x) => x.name === '/features/features.7/features.7.1/attn/Dropout_1');
console.log(n.input, n.attribute.map((a) => a.name));
for (const i of n.input.slice(1)) {
  const p = g.node.find((x) => x.output.includes(i));
  console.log(i, p && p.opType, p && p.input, g.initializer.find((t) => t.name === i) ? 'init' : '');
  if (p) for (const j of p.input) { const q = g.node.find((x) => x.output.includes(j)); console.log('  ', j, q && q.opType, q && q.input); }
}
const c = g.node.find((x) => x.output[0] === n.input[2]);
console.log(c.attribute.map((a) => [a.name, a.type, a.t && { dt: a.t.dataType, raw: JSON.stringify(Array.from(a.t.rawData)), i32: a.t.int32Data, dims: a.t.dims }]));
const r = g.node.find((x) => x.output[0] === n.input[1]);
console.log(r.attribute.map((a) => [a.name, a.t && { dt: a.t.dataType, raw: JSON.stringify(Array.from(a.t.rawData)), f: a.t.floatData }]));
