// A small SVG line chart (no chart library): axes with ticks, one polyline per series, dashed vertical markers.

const W = 460;
const H = 260;
const PAD = { left: 54, right: 14, top: 28, bottom: 40 };
const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706'];

function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const fmt = (v) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(1) : String(Number(v.toPrecision(3))));
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

/**
 * Renders a chart as an SVG string.
 * @param {{ title: string, xLabel: string, yLabel: string, series: { name: string, x: number[], y: number[], step?: boolean, dash?: boolean }[], markers?: number[], yMin?: number }} spec
 */
export function lineChart({ title, xLabel, yLabel, series, markers = [], yMin }) {
  const xs = series.flatMap((s) => s.x);
  const ys = series.flatMap((s) => s.y).filter(Number.isFinite);
  const x0 = 0;
  const x1 = Math.max(1, ...xs);
  let y0 = yMin ?? Math.min(...ys, Infinity);
  let y1 = Math.max(...ys, -Infinity);
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const px = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title)}" font-family="system-ui, sans-serif" font-size="11">`];
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">${esc(title)}</text>`);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${py(t)}" y2="${py(t)}" stroke="#eef0f4"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${py(t) + 4}" text-anchor="end" fill="#4a5468">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1, 6)) parts.push(`<text x="${px(t)}" y="${H - PAD.bottom + 16}" text-anchor="middle" fill="#4a5468">${fmt(t)}</text>`);
  parts.push(`<line x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#8a93a6"/>`);
  parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${H - PAD.bottom}" y2="${H - PAD.bottom}" stroke="#8a93a6"/>`);
  parts.push(`<text x="${(PAD.left + W - PAD.right) / 2}" y="${H - 6}" text-anchor="middle" fill="#1d2330">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(PAD.top + H - PAD.bottom) / 2}) rotate(-90)" text-anchor="middle" fill="#1d2330">${esc(yLabel)}</text>`);
  for (const m of markers) parts.push(`<line x1="${px(m)}" x2="${px(m)}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#9aa3b5" stroke-dasharray="4 3"/>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = [];
    s.x.forEach((x, k) => {
      if (!Number.isFinite(s.y[k])) return;
      if (s.step && k > 0) pts.push(`${px(x).toFixed(1)},${py(s.y[k - 1]).toFixed(1)}`);
      pts.push(`${px(x).toFixed(1)},${py(s.y[k]).toFixed(1)}`);
    });
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6"${s.dash ? ' stroke-dasharray="6 4"' : ''} points="${pts.join(' ')}"/>`);
    parts.push(`<text x="${W - PAD.right - 4}" y="${PAD.top + 12 + 14 * i}" text-anchor="end" fill="${color}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
