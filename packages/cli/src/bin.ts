#!/usr/bin/env node
/**
 * The `gradmax` executable.
 * @packageDocumentation
 */
import { main } from './main.js';
import { installProcessHandlers } from './shared/cleanup.js';
import { processIO } from './shared/io.js';

installProcessHandlers();
process.exitCode = await main(process.argv.slice(2), processIO());
