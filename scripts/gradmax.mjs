#!/usr/bin/env node
// `pnpm gradmax ...` in a clone: runs the built command line from the folder pnpm was called in (INIT_CWD), so that
// relative paths mean what they say. Build first: `pnpm install && pnpm build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
if (!existsSync(bin)) {
  process.stderr.write('gradmax: the command line is not built yet; run "pnpm install && pnpm build" in the repository first\n');
  process.exit(2);
}
if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
await import(bin);
