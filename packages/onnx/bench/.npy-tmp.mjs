const onnx = await import('/work/wt-probe/packages/onnx/dist/index.js');
import * as fs from 'node:fs';
const [n, c, h, w, classes] = process.argv.slice(2).map(Number);
let s = 7;
const r = () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return ((s >>> 0) / 4294967296) * 2 - 1; };
fs.writeFileSync('/tmp/advise/x.npy', onnx.encodeNpy(Float32Array.from({ length: n * c * h * w }, r), [n, c, h, w]));
fs.writeFileSync('/tmp/advise/y.npy', onnx.encodeNpy(Float64Array.from({ length: n }, () => Math.floor(((r() + 1) / 2) * classes) % classes), [n]));
