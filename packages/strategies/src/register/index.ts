/**
 * Opt-in side-effect entry point: `import '@gradmax/strategies/register'` registers every strategy (gradmax,
 * gradmaxOpt, random, randomOutgoingZero, allZero, firefly, net2net, north, tiny) in the core registry by name.
 * @packageDocumentation
 */
import { registerAllStrategies } from '../catalog.js';

registerAllStrategies();
