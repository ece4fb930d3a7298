// Benchmark (not a test): wall time of every strategy's grow() on the same synthetic site and statistics,
// printed as a ratio to GradMax measured in the same run. Run with `pnpm bench` at the repository root (builds
// first), or `node bench/strategies.bench.mjs` in packages/strategies after building core and strategies.
import { Matrix, Rng, matmulTransA } from '@gradmax/core';
import { strategyCatalog } from '../dist/index.js';

const REPEATS = 3;
const cases = [
  { name: 'dense 256→256→256, k=16, 1024 samples', fanIn: 256, units: 256, fanOut: 256, k: 16, n: 1024 },
  { name: 'conv-like fanIn 576 (3×3×64), 64 units, fanOut 576, k=8, 2048 samples', fanIn: 576, units: 64, fanOut: 576, k: 8, n: 2048 },
];

function randomMatrix(rows, cols, seed, scale = 1) {
  const m = new Matrix(rows, cols, new Rng(seed).fillNormal(new Float64Array(rows * cols)));
  for (let i = 0; i < m.data.length; i++) m.data[i] *= scale;
  return m;
}

function setup(c) {
  const h = randomMatrix(c.n, c.fanIn, 1);
  const g = randomMatrix(c.n, c.fanOut, 2, 0.1);
  const weight = 1 / c.n;
  const moment = matmulTransA(g, h);
  for (let i = 0; i < moment.data.length; i++) moment.data[i] *= weight;
  const site = {
    name: c.name,
    kind: 'dense',
    units: c.units,
    fanIn: c.fanIn,
    fanOut: c.fanOut,
    incoming: randomMatrix(c.units, c.fanIn, 3, 1 / Math.sqrt(c.fanIn)),
    incomingBias: new Float64Array(c.units),
    outgoing: randomMatrix(c.fanOut, c.units, 4, 1 / Math.sqrt(c.units)),
    activation: { name: 'relu1', f0: 0, df0: 1 },
  };
  return { site, statistics: { moment, count: c.n, samples: { h, g, weight } } };
}

for (const c of cases) {
  const { site, statistics } = setup(c);
  const rows = [];
  for (const entry of strategyCatalog) {
    const strategy = entry.factory();
    let best = Infinity;
    for (let r = 0; r < REPEATS; r++) {
      const t0 = performance.now();
      strategy.grow({ site, count: c.k, statistics, rng: new Rng(r) });
      best = Math.min(best, performance.now() - t0);
    }
    rows.push({ name: entry.name, ms: best });
  }
  const base = rows.find((r) => r.name === 'gradmax').ms;
  console.log(`\n${c.name} (best of ${REPEATS})`);
  console.log('strategy            ms        × gradmax');
  for (const r of rows) console.log(`${r.name.padEnd(18)} ${r.ms.toFixed(1).padStart(9)} ${(r.ms / base).toFixed(2).padStart(10)}`);
}
