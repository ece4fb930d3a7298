/**
 * Input checks shared by every strategy: shapes, counts, finiteness.
 */
import { InvalidArgumentError, MissingStatisticError, ShapeMismatchError, assertFinite } from './errors.js';
import type { GrowthRequest, GrowthStrategy, SiteStatistics } from './site.js';

/**
 * Validates a growth request for `strategy` and returns its statistics (when the strategy needs them).
 * Throws typed errors naming the site and the offending shape.
 */
export function validateRequest(strategy: GrowthStrategy, request: GrowthRequest): SiteStatistics | undefined {
  const { site, count } = request;
  const where = { site: site.name, strategy: strategy.name };
  if (!Number.isInteger(count) || count <= 0) {
    throw new InvalidArgumentError(`site "${site.name}": number of new units must be a positive integer, got ${count}`, { ...where, count });
  }
  if (site.incoming.rows !== site.units || site.incoming.cols !== site.fanIn) {
    throw new ShapeMismatchError(`site "${site.name}" incoming weights`, [site.units, site.fanIn], site.incoming.shape, where);
  }
  if (site.outgoing.rows !== site.fanOut || site.outgoing.cols !== site.units) {
    throw new ShapeMismatchError(`site "${site.name}" outgoing weights`, [site.fanOut, site.units], site.outgoing.shape, where);
  }
  if (site.incomingBias && site.incomingBias.length !== site.units) {
    throw new ShapeMismatchError(`site "${site.name}" incoming bias`, [site.units], [site.incomingBias.length], where);
  }
  if (site.kind === 'conv' && !site.conv) throw new InvalidArgumentError(`site "${site.name}" is a conv site without conv geometry`, where);
  assertFinite(`site "${site.name}" incoming weights`, site.incoming.data, where);
  assertFinite(`site "${site.name}" outgoing weights`, site.outgoing.data, where);
  const stats = request.statistics;
  if (strategy.needs.moment && !stats) throw new MissingStatisticError(strategy.name, 'the growth matrix M', site.name);
  if (strategy.needs.samples && !stats?.samples) throw new MissingStatisticError(strategy.name, 'retained (h, g) samples', site.name);
  if (stats?.inputsOnly) {
    if (strategy.needs.moment || (strategy.needs.samples && !strategy.needs.inputsOnly)) {
      throw new MissingStatisticError(strategy.name, `the growth matrix M and the gradient rows g (the statistics of site "${site.name}" hold input samples h only)`, site.name);
    }
    const h = stats.samples?.h;
    if (!h) throw new MissingStatisticError(strategy.name, 'retained input samples h', site.name);
    if (h.cols !== site.fanIn) throw new ShapeMismatchError(`site "${site.name}" retained input samples h`, `[n × ${site.fanIn}]`, `[${h.shape}]`, where);
    assertFinite(`site "${site.name}" retained input samples h`, h.data, where);
    return stats;
  }
  if (stats) {
    if (stats.moment.rows !== site.fanOut || stats.moment.cols !== site.fanIn) {
      throw new ShapeMismatchError(`site "${site.name}" growth matrix M`, [site.fanOut, site.fanIn], stats.moment.shape, where);
    }
    assertFinite(`site "${site.name}" growth matrix M`, stats.moment.data, where);
    if (stats.samples) {
      const { h, g } = stats.samples;
      if (h.cols !== site.fanIn || g.cols !== site.fanOut || h.rows !== g.rows) {
        throw new ShapeMismatchError(`site "${site.name}" retained samples (h, g)`, `[n × ${site.fanIn}] and [n × ${site.fanOut}]`, `[${h.shape}] and [${g.shape}]`, where);
      }
    }
  }
  return stats;
}
