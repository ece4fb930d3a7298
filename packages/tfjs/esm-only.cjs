'use strict';
// The `require` entry of every @gradmax package: the packages are ES modules only.
const { name } = require('./package.json');
throw new Error(
  `${name} is an ES module package and cannot be loaded with require(). Use \`import ... from '${name}'\` ` +
    `(an .mjs file, or "type": "module" in package.json) or \`await import('${name}')\` from CommonJS; Node.js >= 20.11. ` +
    'TypeScript users: "module": "NodeNext" (or "Node16"/"Bundler") and an ESM file (.ts in a "type": "module" package, or .mts).',
);
