/**
 * Hand-written SVG charts: line charts with ±std bands and grouped bar charts with error bars.
 * Output is deterministic (same input, same bytes) and self-contained.
 */

/** One line of a {@link lineChart}. */
export interface LineSeries {
  /** Legend label. */
  name: string;
  /** x values. */
  x: number[];
  /** y values (same length as x). */
  y: number[];
  /** Optional band half-width (e.g. std) per point. */
  band?: number[];
  /** Line colour (default: the palette colour of the series index). */
  color?: string;
  /** SVG dash pattern, e.g. `"6 4"` (default solid). */
  dash?: string;
  /** Line width in pixels (default 1.6). */
  strokeWidth?: number;
}

/** A vertical marker line, optionally labelled at the top of the plot (e.g. `growth 1`). */
export interface VLine {
  /** x position. */
  x: number;
  /** Label drawn next to the line's top end. */
  label?: string;
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Chart title. */
  title: string;
  /** x-axis label. */
  xLabel: string;
  /** y-axis label. */
  yLabel: string;
  /** The lines. */
  series: LineSeries[];
  /**
   * Logarithmic y axis. Band ends at or below 0 cannot be drawn: they are clipped at the axis floor and the chart
   * says so in a note under the legend.
   */
  logY?: boolean;
  /** Draw markers at every point (for short series). */
  markers?: boolean;
  /** Vertical dashed lines (e.g. growth steps), plain x values or labelled {@link VLine}s. */
  vlines?: (number | VLine)[];
  /** Short note drawn under the legend (e.g. what the bands are). */
  note?: string;
  /** Width in pixels (default 760). */
  width?: number;
  /** Height in pixels (default 440). */
  height?: number;
  /** Maximum points drawn per series (evenly subsampled; default 400). */
  maxPoints?: number;
}

/**
 * The colour-blind-safe palette of every chart (Okabe & Ito 2008, without yellow, which is unreadable on white,
 * then two greys): blue, vermillion, bluish green, reddish purple, orange, sky blue, black, grey.
 */
export const PALETTE: readonly string[] = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#7F7F7F', '#BBBBBB'];

/**
 * The highlighted view's styles (GradMax vs Random vs the small/big baselines): one place that names the arms
 * the paper compares, so that every chart draws them alike.
 */
export const HIGHLIGHT: Readonly<Record<string, { color: string; dash?: string; strokeWidth: number; label: string }>> = {
  gradmax: { color: '#0072B2', strokeWidth: 2.8, label: 'GradMax' },
  random: { color: '#D55E00', strokeWidth: 2, label: 'Random' },
  small: { color: '#7F7F7F', dash: '7 4', strokeWidth: 1.8, label: 'small' },
  big: { color: '#000000', dash: '2 3', strokeWidth: 1.8, label: 'big' },
};

/** Colour of series i (from {@link PALETTE}, cycled). */
export function seriesColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function num(x: number): string {
  return Number.isFinite(x) ? (Math.round(x * 100) / 100).toString() : '0';
}

/** "Nice" tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

function subsample(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let i = 0; i < max; i++) out.push(Math.round((i * (n - 1)) / (max - 1)));
  return [...new Set(out)];
}

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Size, margins (legend on the right) and plot-area size shared by every chart. */
function plotArea(options: { width?: number; height?: number; series: readonly { name: string }[] }) {
  // The legend widens for long arm names (variant arms such as gradmax:sign=largestNegative); the chart widens with
  // it so that the plot area keeps its size. About 6.6 px per character at the legend's font size.
  const longest = Math.max(0, ...options.series.map((s) => s.name.length));
  const legendW = Math.max(170, Math.ceil(40 + 6.6 * longest));
  const width = (options.width ?? 760) + (legendW - 170);
  const height = options.height ?? 440;
  const m = { left: 70, right: legendW + 10, top: 34, bottom: 50 };
  return { width, height, legendW, m, pw: width - m.left - m.right, ph: height - m.top - m.bottom };
}

/** A line chart with optional ±band per series, axes, ticks and a legend. */
export function lineChart(options: LineChartOptions): string {
  const { width, height, legendW, m, pw, ph } = plotArea(options);
  const ty = (v: number) => (options.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  let xmin = Infinity;
  let xmax = -Infinity;
  let ymin = Infinity;
  let ymax = -Infinity;
  for (const s of options.series) {
    s.x.forEach((x, i) => {
      const y = s.y[i]!;
      if (!Number.isFinite(x) || !Number.isFinite(y)) return;
      const b = s.band?.[i] ?? 0;
      xmin = Math.min(xmin, x);
      xmax = Math.max(xmax, x);
      // On a log axis band ends do not set the floor (the means do, down to half the smallest); a band end below
      // it is clipped there and the note says so.
      const lo = options.logY ? y * 0.5 : y - b;
      ymin = Math.min(ymin, ty(lo));
      ymax = Math.max(ymax, ty(y + b));
    });
  }
  if (!Number.isFinite(xmin)) {
    xmin = 0;
    xmax = 1;
    ymin = 0;
    ymax = 1;
  }
  if (xmax === xmin) xmax = xmin + 1;
  if (ymax === ymin) {
    ymax += 0.5;
    ymin -= 0.5;
  }
  const pad = (ymax - ymin) * 0.04;
  ymin -= pad;
  ymax += pad;
  const X = (x: number) => m.left + ((x - xmin) / (xmax - xmin)) * pw;
  const Y = (v: number) => m.top + ph - ((ty(v) - ymin) / (ymax - ymin)) * ph;
  const Yt = (t: number) => m.top + ph - ((t - ymin) / (ymax - ymin)) * ph;
  const body: string[] = [];
  body.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  for (const t of niceTicks(xmin, xmax)) {
    body.push(`<line x1="${num(X(t))}" y1="${m.top + ph}" x2="${num(X(t))}" y2="${m.top + ph + 5}" stroke="#444"/>`);
    body.push(`<text x="${num(X(t))}" y="${m.top + ph + 18}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  // Log axes: nice linear ticks when the range is under ~1.5 decades, else one tick per decade (or 1-3-10).
  let yTicks: number[];
  if (!options.logY) yTicks = niceTicks(ymin, ymax);
  else if (ymax - ymin < 1.5) yTicks = niceTicks(10 ** ymin, 10 ** ymax, 6).filter((t) => t > 0).map((t) => Math.log10(t));
  else {
    yTicks = [];
    for (let e = Math.floor(ymin); e <= Math.ceil(ymax); e++) yTicks.push(e, ...(ymax - ymin < 4 ? [e + Math.log10(3)] : []));
  }
  for (const t of yTicks) {
    if (t < ymin || t > ymax) continue;
    body.push(`<line x1="${m.left}" y1="${num(Yt(t))}" x2="${m.left + pw}" y2="${num(Yt(t))}" stroke="#e4e4e4"/>`);
    body.push(`<text x="${m.left - 6}" y="${num(Yt(t) + 4)}" text-anchor="end">${tickLabel(options.logY ? Number((10 ** t).toPrecision(3)) : t)}</text>`);
  }
  // Labels that would overlap the previous one are left out (dense schedules): every line is drawn, and the
  // labels kept (e.g. growth 1, 4, 7, 10) still number them.
  let labelEnd = -Infinity;
  for (const raw of options.vlines ?? []) {
    const v = typeof raw === 'number' ? { x: raw } : raw;
    if (v.x < xmin || v.x > xmax) continue;
    body.push(`<line x1="${num(X(v.x))}" y1="${m.top}" x2="${num(X(v.x))}" y2="${m.top + ph}" stroke="#777" stroke-dasharray="4 3"/>`);
    if (v.label && X(v.x) + 3 >= labelEnd) {
      body.push(`<text class="vline-label" x="${num(X(v.x) + 3)}" y="${m.top + 12}" font-size="10" fill="#555">${esc(v.label)}</text>`);
      labelEnd = X(v.x) + 3 + v.label.length * 5.6 + 6;
    }
  }
  body.push(`<text x="${m.left + pw / 2}" y="${height - 12}" text-anchor="middle">${esc(options.xLabel)}</text>`);
  body.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}${options.logY ? ' (log scale)' : ''}</text>`);
  let clipped = false;
  const floorY = m.top + ph;
  options.series.forEach((s, si) => {
    const color = s.color ?? seriesColor(si);
    const idx = subsample(s.x.length, options.maxPoints ?? 400).filter((i) => Number.isFinite(s.x[i]!) && Number.isFinite(s.y[i]!));
    if (s.band && idx.length > 1) {
      const upper = idx.map((i) => `${num(X(s.x[i]!))},${num(Math.max(m.top, Y(s.y[i]! + s.band![i]!)))}`);
      const lower = idx
        .slice()
        .reverse()
        .map((i) => {
          const lo = s.y[i]! - s.band![i]!;
          let y = options.logY && !(lo > 0) ? floorY : Y(lo);
          if (y > floorY) y = floorY;
          if (y === floorY && (options.logY ? !(lo > 0) || ty(lo) < ymin : lo < ymin)) clipped = true;
          return `${num(X(s.x[i]!))},${num(y)}`;
        });
      body.push(`<polygon class="band" points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none"/>`);
    }
    const pts = idx.map((i) => `${num(X(s.x[i]!))},${num(Y(s.y[i]!))}`).join(' ');
    body.push(`<polyline class="series" data-name="${esc(s.name)}" points="${pts}" fill="none" stroke="${color}" stroke-width="${s.strokeWidth ?? 1.6}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    if (options.markers) for (const i of idx) body.push(`<circle cx="${num(X(s.x[i]!))}" cy="${num(Y(s.y[i]!))}" r="2.5" fill="${color}"/>`);
    const ly = m.top + 8 + si * 18;
    body.push(`<line x1="${width - legendW}" y1="${ly}" x2="${width - legendW + 22}" y2="${ly}" stroke="${color}" stroke-width="3"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    body.push(`<text class="legend" x="${width - legendW + 28}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  const notes = [...(options.note ? [options.note] : []), ...(clipped ? ['bands clipped at the axis floor'] : [])];
  notes.forEach((n, i) => body.push(`<text class="note" x="${width - legendW}" y="${m.top + 16 + options.series.length * 18 + i * 14}" font-size="10" fill="#555">${esc(n)}</text>`));
  return frame(width, height, options.title, body);
}

/** Options of {@link barChart}. */
export interface BarChartOptions {
  /** Chart title. */
  title: string;
  /** x-axis label. */
  xLabel: string;
  /** y-axis label. */
  yLabel: string;
  /** Group labels along x (e.g. "growth 1"). */
  groups: string[];
  /** One series per bar colour; `values[g]` and optional `errors[g]` per group (NaN = no bar). */
  series: { name: string; values: number[]; errors?: number[] }[];
  /** Width in pixels (default 760). */
  width?: number;
  /** Height in pixels (default 440). */
  height?: number;
}

/** A grouped bar chart with error bars, y axis from 0. */
export function barChart(options: BarChartOptions): string {
  const { width, height, legendW, m, pw, ph } = plotArea(options);
  let ymax = 0;
  let ymin = 0;
  for (const s of options.series) {
    s.values.forEach((v, g) => {
      if (!Number.isFinite(v)) return;
      const e = s.errors?.[g] ?? 0;
      ymax = Math.max(ymax, v + (Number.isFinite(e) ? e : 0));
      ymin = Math.min(ymin, v - (Number.isFinite(e) ? e : 0));
    });
  }
  if (ymax === ymin) ymax = ymin + 1;
  ymax += (ymax - ymin) * 0.05;
  const Y = (v: number) => m.top + ph - ((v - ymin) / (ymax - ymin)) * ph;
  const body: string[] = [];
  body.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  for (const t of niceTicks(ymin, ymax)) {
    body.push(`<line x1="${m.left}" y1="${num(Y(t))}" x2="${m.left + pw}" y2="${num(Y(t))}" stroke="#e4e4e4"/>`);
    body.push(`<text x="${m.left - 6}" y="${num(Y(t) + 4)}" text-anchor="end">${tickLabel(t)}</text>`);
  }
  const G = Math.max(1, options.groups.length);
  const S = Math.max(1, options.series.length);
  const gw = pw / G;
  const bw = (gw * 0.8) / S;
  options.groups.forEach((label, g) => {
    body.push(`<text x="${num(m.left + gw * (g + 0.5))}" y="${m.top + ph + 18}" text-anchor="middle">${esc(label)}</text>`);
  });
  options.series.forEach((s, si) => {
    const color = seriesColor(si);
    s.values.forEach((v, g) => {
      if (!Number.isFinite(v)) return;
      const x = m.left + gw * g + gw * 0.1 + bw * si;
      const y0 = Y(Math.max(0, ymin));
      const y1 = Y(v);
      body.push(`<rect x="${num(x)}" y="${num(Math.min(y0, y1))}" width="${num(bw * 0.92)}" height="${num(Math.abs(y0 - y1))}" fill="${color}"/>`);
      const e = s.errors?.[g];
      if (e !== undefined && Number.isFinite(e) && e > 0) {
        const cx = x + bw * 0.46;
        body.push(`<line x1="${num(cx)}" y1="${num(Y(v - e))}" x2="${num(cx)}" y2="${num(Y(v + e))}" stroke="#222"/>`);
        body.push(`<line x1="${num(cx - 3)}" y1="${num(Y(v + e))}" x2="${num(cx + 3)}" y2="${num(Y(v + e))}" stroke="#222"/>`);
        body.push(`<line x1="${num(cx - 3)}" y1="${num(Y(v - e))}" x2="${num(cx + 3)}" y2="${num(Y(v - e))}" stroke="#222"/>`);
      }
    });
    const ly = m.top + 8 + si * 18;
    body.push(`<rect x="${width - legendW}" y="${ly - 6}" width="22" height="12" fill="${color}"/>`);
    body.push(`<text x="${width - legendW + 28}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  body.push(`<text x="${m.left + pw / 2}" y="${height - 12}" text-anchor="middle">${esc(options.xLabel)}</text>`);
  body.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}</text>`);
  return frame(width, height, options.title, body);
}
