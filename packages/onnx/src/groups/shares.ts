/**
 * Grouped convolutions as G sites, one per share. A group whose layers are grouped convs (group count G > 1) grows in
 * G shares (share s at the end of conv group s, see `insertionPoints`); a unit of share s reads only its conv group's
 * input channels and writes only its conv group's outputs, so it has its own growth matrix M_s (see
 * `computeGroupStatistics`). For strategies that read statistics the group is presented to the core as G sites: share
 * s's existing units (rows s·units/G … of the incoming matrix, the same columns of the outgoing matrix), M_s, and k/G
 * new units; the G results are concatenated in share order, which is the order `widenGroup` places them in.
 * @packageDocumentation
 */
import { InvalidArgumentError, Matrix, UnsupportedError, type GrowthReport, type GrowthSite, type GrowthStrategy, type NewUnits, type Rng, type SiteStatistics } from '@gradmax/core';

/** The core site of share `s` of `multiple`: that conv group's existing units of the group site `site`. */
export function shareSite(site: GrowthSite, multiple: number, s: number): GrowthSite {
  const per = site.units / multiple;
  const first = s * per;
  const incoming = new Matrix(per, site.fanIn, site.incoming.data.slice(first * site.fanIn, (first + per) * site.fanIn));
  const outgoing = Matrix.zeros(site.fanOut, per);
  const src = site.outgoing.data;
  for (let r = 0; r < site.fanOut; r++) for (let u = 0; u < per; u++) outgoing.data[r * per + u] = src[r * site.units + first + u]!;
  return {
    name: `${site.name} [share ${s + 1}/${multiple}]`,
    kind: site.kind,
    units: per,
    fanIn: site.fanIn,
    fanOut: site.fanOut,
    incoming,
    outgoing,
    activation: { ...site.activation },
    ...(site.incomingBias ? { incomingBias: site.incomingBias.slice(first, first + per) } : {}),
  };
}

/**
 * Runs `strategy` once per share (k/G units each, with that share's statistics) and concatenates the new units in
 * share order. Throws {@link InvalidArgumentError} when `count` is not a multiple of `multiple` and
 * {@link UnsupportedError} when the statistics do not have one matrix per share.
 */
export function growByShares(strategy: GrowthStrategy, site: GrowthSite, multiple: number, count: number, shares: readonly SiteStatistics[] | undefined, rng: Rng): NewUnits {
  if (count % multiple !== 0) throw new InvalidArgumentError(`group "${site.name}": ${count} new units do not split into ${multiple} conv groups; add a multiple of ${multiple}`, { site: site.name, multiple });
  if (!shares || shares.length !== multiple) {
    throw new UnsupportedError(
      `group "${site.name}" has grouped convolutions (${multiple} conv groups): each share of new units has its own growth matrix, but the statistics ${shares ? `have ${shares.length} shares` : 'have no per-share matrices'}; compute them with computeGroupStatistics (or give a statistics manifest whose entry lists the "shares" files, as \`gradmax onnx stats\` writes them)`,
      { site: site.name, multiple },
    );
  }
  const kp = count / multiple;
  const per = site.units / multiple;
  const parts = shares.map((statistics, s) => strategy.grow({ site: shareSite(site, multiple, s), count: kp, statistics, rng: rng.fork(`share ${s}`) }));
  const incoming = Matrix.zeros(count, site.fanIn);
  const outgoing = Matrix.zeros(site.fanOut, count);
  const incomingBias = new Float64Array(count);
  const anySource = parts.some((p) => p.sourceUnits);
  const anyScale = parts.some((p) => p.existingOutgoingScale);
  const sourceUnits = anySource ? new Int32Array(count).fill(-1) : undefined;
  const existingOutgoingScale = anyScale ? new Float64Array(site.units).fill(1) : undefined;
  const report: GrowthReport = { strategy: parts[0]!.report.strategy, site: site.name, count, notes: [] };
  const singular: number[] = [];
  let predicted = 0;
  parts.forEach((p, s) => {
    incoming.data.set(p.incoming.data, s * kp * site.fanIn);
    incomingBias.set(p.incomingBias, s * kp);
    for (let r = 0; r < site.fanOut; r++) for (let j = 0; j < kp; j++) outgoing.data[r * count + s * kp + j] = p.outgoing.data[r * kp + j]!;
    if (p.sourceUnits && sourceUnits) for (let j = 0; j < kp; j++) sourceUnits[s * kp + j] = p.sourceUnits[j]! < 0 ? -1 : s * per + p.sourceUnits[j]!;
    if (p.existingOutgoingScale && existingOutgoingScale) existingOutgoingScale.set(p.existingOutgoingScale, s * per);
    for (const note of p.report.notes) report.notes.push(`share ${s + 1}/${multiple}: ${note}`);
    if (p.report.singularValues) singular.push(...p.report.singularValues);
    if (typeof p.report.predictedGradientNorm === 'number') predicted += p.report.predictedGradientNorm ** 2;
  });
  if (singular.length) report.singularValues = singular;
  if (parts.some((p) => typeof p.report.predictedGradientNorm === 'number')) report.predictedGradientNorm = Math.sqrt(predicted);
  report.notes.unshift(`grown as ${multiple} shares of ${kp} unit(s), one per conv group, each with its own growth matrix`);
  return { incoming, outgoing, incomingBias, report, ...(sourceUnits ? { sourceUnits } : {}), ...(existingOutgoingScale ? { existingOutgoingScale } : {}) };
}
