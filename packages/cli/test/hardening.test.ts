/** Hardening of the `gradmax` command line (issue 15): pipes, signals, temp files, sizes, ranges. */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Rng } from '@gradmax/core';
import { serializeModel } from '@gradmax/onnx';
import { EXIT_OK, EXIT_USAGE, main, memoryIO } from '@gradmax/cli';
import { GraphBuilder, tmpDir } from '../../onnx/test/helpers.js';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

async function run(argv: string[], cwd?: string) {
  const io = memoryIO({});
  if (cwd) io.cwd = cwd;
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

/** A deep MLP: `layers` Gemm layers of width 4 (inspect prints one line per layer). */
function deepMlp(layers: number, batch: number | string = 'N') {
  const b = new GraphBuilder(new Rng(3));
  let x = b.input('x', [batch, 4]);
  for (let i = 0; i < layers; i++) {
    x = b.op('Gemm', [x, b.weight([4, 4]), b.weight([4])], {}, 1, `fc${i}`);
    if (i < layers - 1) x = b.op('Relu', [x]);
  }
  b.output(x, [batch, 4]);
  return b.model();
}

function saveModelFile(dir: string, name: string, layers = 3): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, serializeModel(deepMlp(layers)));
  return file;
}

describe('stdout closed early (issue 15 item 14)', () => {
  it('gradmax onnx inspect MODEL | head -1 exits quietly', () => {
    const dir = tmpDir('gradmax-cli-epipe-');
    const file = saveModelFile(dir, 'deep.onnx', 400);
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" onnx inspect --json "${file}" | head -1`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('{\n');
    expect(r.status).toBe(0);
  });
});
