import { spawnSync } from 'node:child_process';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildReport, HIGHLIGHT, lineChart, PALETTE, type RunResult } from '@gradmax/harness';

/** rsvg-convert (Debian `librsvg2-bin`, installed by CI when apt is available); the PNG checks skip without it. */
const rsvg = spawnSync('rsvg-convert', ['--version'], { encoding: 'utf8' }).status === 0;

/** Minimal PNG decoder for 8-bit RGB/RGBA, non-interlaced (what rsvg-convert writes): returns RGBA pixels. */
function decodePng(buf: Buffer): { width: number; height: number; rgba: Uint8Array } {
  expect(buf.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let pos = 8;
  let width = 0, height = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('ascii', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8);
      colorType = data[9]!;
      expect(data[12]).toBe(0);
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const out = new Uint8Array(width * height * bpp);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const r = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= bpp ? out[y * stride + x - bpp]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= bpp && y > 0 ? out[(y - 1) * stride + x - bpp]! : 0;
      let v = r;
      if (filter === 1) v = r + a;
      else if (filter === 2) v = r + b;
      else if (filter === 3) v = r + ((a + b) >> 1);
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v = r + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      out[y * stride + x] = v & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[i * 4] = out[i * bpp]!;
    rgba[i * 4 + 1] = out[i * bpp + 1]!;
    rgba[i * 4 + 2] = out[i * bpp + 2]!;
    rgba[i * 4 + 3] = bpp === 4 ? out[i * bpp + 3]! : 255;
  }
  return { width, height, rgba };
}

function countColor(png: { rgba: Uint8Array }, hex: string, tol = 8): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < png.rgba.length; i += 4) {
    if (png.rgba[i + 3]! > 200 && Math.abs(png.rgba[i]! - r!) <= tol && Math.abs(png.rgba[i + 1]! - g!) <= tol && Math.abs(png.rgba[i + 2]! - b!) <= tol) n++;
  }
  return n;
}

function run(arm: string, seed: number, level: number): RunResult {
  const step = Array.from({ length: 31 }, (_, i) => i * 10);
  return {
    schema: 'gradmax.bench.result/v1',
    status: 'ok',
    id: `teacher-student__${arm}__${seed}`,
    task: 'teacher-student',
    arm,
    seed,
    backend: { name: 'wasm', device: 'wasm', requested: 'auto', package: 'p' },
    configHash: 'abcd0001',
    config: { preset: 'tiny' },
    versions: { node: '20' },
    host: { platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'c', node: '20' },
    curves: { trainLoss: { step, value: step.map((s) => level + 2 / (1 + s / 50) + 0.05 * seed) } },
    growths: arm === 'small' || arm === 'big' ? [] : [100, 200].map((s) => ({ step: s, site: 'hidden0', strategy: arm, unitsBefore: 3, unitsAfter: 4, durationMs: 1 })),
    summary: { finalTrainLoss: level },
    timings: { totalMs: 10, setupMs: 1, trainMs: 8, growthMs: 1, evalMs: 0, analysisMs: 0, steps: 300 },
    startedAt: '2026-11-26T00:00:00Z',
    finishedAt: '2026-11-26T00:00:01Z',
  };
}

describe('plots', () => {
  const results = ['gradmax', 'random', 'small', 'big', 'north'].flatMap((arm, k) => [0, 1, 2].map((seed) => run(arm, seed, [0.2, 0.4, 1, 0.1, 0.5][k]!)));
  const report = buildReport(results);
  const highlight = report.svgs['teacher-student-wasm-abcd0001-highlight.svg']!;

  it('the highlighted view draws GradMax, Random, small and big in their own styles, with labelled growth steps and axis titles', () => {
    expect(highlight).toBeDefined();
    expect(highlight).toContain('teacher-student: GradMax vs Random vs small vs big from step 50 (wasm)');
    expect(highlight).toContain('>training step</text>');
    expect(highlight).toContain('training loss (linear scale)');
    expect(highlight).toContain('>growth 1</text>');
    expect(highlight).toContain('>growth 2</text>');
    expect(highlight).toContain('>bands: mean ± std over seeds</text>');
    for (const [arm, style] of Object.entries(HIGHLIGHT)) {
      expect(highlight).toContain(`>${style.label}, n=3</text>`);
      expect(highlight).toMatch(new RegExp(`class="series" data-name="${style.label}, n=3" points="[^"]+" fill="none" stroke="${style.color}" stroke-width="${style.strokeWidth}"`));
      void arm;
    }
    // Other strategies stay out of the highlighted view.
    expect(highlight).not.toContain('north');
    expect((highlight.match(/class="series"/g) ?? []).length).toBe(4);
    expect((highlight.match(/class="band"/g) ?? []).length).toBe(4);
    expect(report.markdown).toContain('![highlighted training loss](teacher-student-wasm-abcd0001-highlight.svg)');
  });

  it('every colour is from the colour-blind-safe palette (or a neutral grey)', () => {
    for (const svg of Object.values(report.svgs)) {
      const colours = new Set([...svg.matchAll(/(?:stroke|fill)="(#[0-9A-Fa-f]{6})"/g)].map((m) => m[1]!.toUpperCase()));
      const allowed = new Set([...PALETTE, '#FFFFFF', '#444444', '#E4E4E4', '#777777', '#555555', '#222222'].map((c) => c.toUpperCase()));
      for (const c of colours) expect(allowed.has(c), `${c} not in the palette`).toBe(true);
    }
  });

  it('log-axis bands that reach zero are clipped at the floor and the chart says so', () => {
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', logY: true, series: [{ name: 'a', x: [0, 1, 2], y: [1, 0.5, 0.1], band: [0.5, 0.6, 0.2] }] });
    expect(svg).toContain('bands clipped at the axis floor');
    const fine = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', logY: true, series: [{ name: 'a', x: [0, 1, 2], y: [1, 0.5, 0.1], band: [0.1, 0.05, 0.01] }] });
    expect(fine).not.toContain('clipped');
  });

  it('dense growth schedules keep every line but only labels that do not overlap', () => {
    const vlines = Array.from({ length: 12 }, (_, i) => ({ x: 80 + 20 * i, label: `growth ${i + 1}` }));
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', x: [0, 600], y: [1, 0] }], vlines });
    expect((svg.match(/stroke-dasharray="4 3"/g) ?? []).length).toBe(12);
    const xs = [...svg.matchAll(/class="vline-label" x="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(xs.length).toBeGreaterThan(1);
    expect(xs.length).toBeLessThan(12);
    expect(svg).toContain('>growth 1</text>');
    for (let i = 1; i < xs.length; i++) expect(xs[i]! - xs[i - 1]!).toBeGreaterThanOrEqual('growth 10'.length * 5.6);
  });

  it.skipIf(!rsvg)('renders to PNG (rsvg-convert) with the highlighted lines visible', () => {
    const r = spawnSync('rsvg-convert', ['-f', 'png'], { input: highlight, maxBuffer: 1 << 26 });
    expect(r.status).toBe(0);
    const png = decodePng(r.stdout as Buffer);
    expect(png.width).toBe(760);
    expect(png.height).toBe(440);
    // GradMax's blue and Random's vermillion lines are drawn with many pixels each.
    expect(countColor(png, HIGHLIGHT['gradmax']!.color)).toBeGreaterThan(200);
    expect(countColor(png, HIGHLIGHT['random']!.color)).toBeGreaterThan(150);
    expect(countColor(png, '#000000', 30)).toBeGreaterThan(100);
  });
});
