/**
 * Typed errors of the probe builder.
 * @packageDocumentation
 */
import { UnsupportedError } from '@gradmax/core';

/**
 * A node on the path from a site's pre-activation to the loss has an operator type without a
 * vector-Jacobian rule. `details` holds `node` (name or first output) and `opType`.
 */
export class MissingGradientRuleError extends UnsupportedError {
  constructor(node: string, opType: string, domain: string, sites: readonly string[]) {
    super(
      `no gradient rule for node "${node}" (op type ${domain ? `${domain}::` : ''}${opType}), which lies on the path from site${sites.length > 1 ? 's' : ''} ${sites.map((s) => `"${s}"`).join(', ')} to the loss`,
      { node, opType, domain, sites: [...sites] },
    );
  }
}
