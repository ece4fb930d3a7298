/** Non-regular files (devices, FIFOs, folders) are refused before reading (issue 15 item 12). */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileAccessError, loadModel, readNpy, readStatisticsManifest, verifyModels } from '@gradmax/onnx';
import { tmpDir } from './helpers.js';

describe('non-regular files', () => {
  it('loadModel, readNpy, readStatisticsManifest and verifyModels refuse /dev/zero, a FIFO and a folder', async () => {
    const dir = tmpDir('gradmax-onnx-nonregular-');
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [file, kind] of [
      ['/dev/zero', 'a character device'],
      [fifo, 'a FIFO'],
      [dir, 'a folder'],
    ] as const) {
      for (const read of [() => loadModel(file), () => readNpy(file), () => readStatisticsManifest(file)]) {
        expect(read).toThrow(FileAccessError);
        expect(read).toThrow(`it is ${kind}, not a regular file`);
      }
      await expect(verifyModels(file, file)).rejects.toThrow(`it is ${kind}, not a regular file`);
    }
  });
});
