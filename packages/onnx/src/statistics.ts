/**
 * Growth statistics supplied from outside (computed in the user's training framework) as `.npy` files.
 *
 * Layout (all arrays float32 or float64, C order; see {@link OnnxSite} for the unit/fan orders):
 * - `moment`: 2-D `[fanOut, fanIn]`, the growth matrix M = mean over examples of g hᵀ, where h is the input of
 *   the current layer (dense: the `fanIn` input features; conv: the input patch in (a_r, a_c, c_in) order) and g is
 *   the gradient of each example's loss with respect to the next layer's pre-activation (dense: the `fanOut`
 *   outputs; conv: the exact conv growth matrix of the core, rows in (b_r, b_c, c_out) order; conv→flatten→dense:
 *   rows in (h, w, o) order). For Gemm layers use the effective weights' gradients (the model's pre-activation),
 *   not the gradients of the stored B.
 * - `h` (optional): 2-D `[n, fanIn]` retained input samples; `g` (optional): 2-D `[n, fanOut]` matching gradient
 *   samples. Both or neither. `weight` (default `1 / count`) scales gᵀh to the moment.
 * - `count` (default: rows of `h`, else 1): number of examples behind the moment.
 * - `shares` (optional): for a group with grouped convolutions, one `[fanOut, fanIn]` file per conv group: the growth
 *   matrix of the new units of that share (see `computeGroupStatistics`); `moment` is then their sum.
 *
 * A manifest JSON file maps site names to such files, with paths relative to the manifest:
 * ```json
 * { "sites": { "fc1->fc2": { "moment": "fc1_M.npy", "count": 512, "h": "fc1_h.npy", "g": "fc1_g.npy" } } }
 * ```
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, Matrix, ShapeMismatchError, assertFinite, type SiteStatistics } from '@gradmax/core';
import { FileAccessError, assertRegularFile } from './errors.js';
import { npyToFloat64, readNpy } from './npy.js';

/** Files (and numbers) describing one site's statistics. */
export interface NpyStatisticsSpec {
  /** `.npy` file of M, `[fanOut, fanIn]`. */
  moment: string;
  /** Number of examples behind M. */
  count?: number;
  /** `.npy` file of input samples, `[n, fanIn]`. */
  h?: string;
  /** `.npy` file of gradient samples, `[n, fanOut]`. */
  g?: string;
  /** Scale so that weight · gᵀh estimates M (default 1 / count). */
  weight?: number;
  /** `.npy` files of the per-share growth matrices of a group with grouped convolutions, `[fanOut, fanIn]` each. */
  shares?: string[];
}

/** Shapes a site expects. */
export interface StatisticsTarget {
  name: string;
  fanIn: number;
  fanOut: number;
}

function matrixFromNpy(file: string, rows: number | undefined, cols: number, what: string, site: string): Matrix {
  const a = readNpy(file);
  if (a.shape.length !== 2 || (rows !== undefined && a.shape[0] !== rows) || a.shape[1] !== cols) {
    const hint = a.shape.length === 2 && a.shape[0] === cols && a.shape[1] === rows ? ' (it looks transposed)' : '';
    throw new ShapeMismatchError(`site "${site}" ${what} from "${file}"${hint}`, rows === undefined ? `[n, ${cols}]` : [rows, cols], a.shape, { site, file });
  }
  const m = Matrix.from(a.shape[0]!, a.shape[1]!, npyToFloat64(a));
  assertFinite(`site "${site}" ${what} from "${file}"`, m.data, { site, file });
  return m;
}

/** Reads one site's statistics from `.npy` files (see the module documentation for the layout). */
export function statisticsFromNpy(target: StatisticsTarget, spec: NpyStatisticsSpec): SiteStatistics & { shares?: SiteStatistics[] } {
  const moment = matrixFromNpy(spec.moment, target.fanOut, target.fanIn, 'growth matrix M', target.name);
  const stats: SiteStatistics & { shares?: SiteStatistics[] } = { moment, count: 1 };
  if ((spec.h === undefined) !== (spec.g === undefined)) throw new InvalidArgumentError(`site "${target.name}": give both h and g samples, or neither`, { site: target.name });
  if (spec.h && spec.g) {
    const h = matrixFromNpy(spec.h, undefined, target.fanIn, 'h samples', target.name);
    const g = matrixFromNpy(spec.g, h.rows, target.fanOut, 'g samples', target.name);
    const count = spec.count ?? h.rows;
    stats.samples = { h, g, weight: spec.weight ?? 1 / count };
    stats.count = count;
  } else if (spec.count !== undefined) stats.count = spec.count;
  if (!Number.isInteger(stats.count) || stats.count <= 0) throw new InvalidArgumentError(`site "${target.name}": count must be a positive integer, got ${stats.count}`, { site: target.name });
  if (spec.shares) stats.shares = spec.shares.map((f, i) => ({ moment: matrixFromNpy(f, target.fanOut, target.fanIn, `growth matrix of share ${i + 1}`, target.name), count: stats.count }));
  return stats;
}

/** Largest statistics manifest read (it names .npy files; the arrays are in those files). */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/**
 * Reads a statistics manifest (JSON, see the module documentation) and returns the spec per site name with paths
 * resolved against the manifest's folder.
 */
export function readStatisticsManifest(file: string): Map<string, NpyStatisticsSpec> {
  let json: unknown;
  try {
    const st = fs.statSync(file);
    assertRegularFile(st, `statistics manifest "${file}"`, file);
    if (st.size > MAX_MANIFEST_BYTES) throw new FileAccessError(`statistics manifest "${file}" has ${st.size} bytes, more than a manifest of file names needs (${MAX_MANIFEST_BYTES}); give the JSON manifest or a .npy file`, { file });
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e instanceof FileAccessError) throw e;
    throw new FileAccessError(`cannot read statistics manifest "${file}": ${(e as Error).message}`, { file });
  }
  const sites = (json as { sites?: unknown })?.sites;
  if (!sites || typeof sites !== 'object') throw new InvalidArgumentError(`statistics manifest "${file}" needs a "sites" object`, { file });
  const dir = path.dirname(path.resolve(file));
  const out = new Map<string, NpyStatisticsSpec>();
  for (const [name, raw] of Object.entries(sites as Record<string, unknown>)) {
    const s = raw as Record<string, unknown>;
    if (!s || typeof s.moment !== 'string') throw new InvalidArgumentError(`statistics manifest "${file}": site "${name}" needs a "moment" file`, { file, site: name });
    const spec: NpyStatisticsSpec = { moment: path.resolve(dir, s.moment) };
    for (const key of ['h', 'g'] as const) if (typeof s[key] === 'string') spec[key] = path.resolve(dir, s[key] as string);
    for (const key of ['count', 'weight'] as const) if (typeof s[key] === 'number') spec[key] = s[key] as number;
    if (s.shares !== undefined) {
      if (!Array.isArray(s.shares) || !s.shares.every((f) => typeof f === 'string')) throw new InvalidArgumentError(`statistics manifest "${file}": site "${name}" has "shares" that is not a list of file names`, { file, site: name });
      spec.shares = (s.shares as string[]).map((f) => path.resolve(dir, f));
    }
    out.set(name, spec);
  }
  return out;
}
