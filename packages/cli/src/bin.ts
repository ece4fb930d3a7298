#!/usr/bin/env node
/**
 * The `gradmax` executable.
 * @packageDocumentation
 */
import { main } from './main.js';
import { processIO } from './shared/io.js';

process.exitCode = await main(process.argv.slice(2), processIO());
