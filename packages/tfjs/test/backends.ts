/**
 * One suite, every backend (in the style of tfjs-core's `describeWithFlags`): `describeEachBackend(name, fn)` runs
 * `fn` once per backend of {@link TEST_BACKENDS}, each in its own describe block whose `beforeAll` selects the
 * backend. WebGPU runs on whatever Vulkan driver `VK_ICD_FILENAMES` names, SwiftShader (Debian's chromium) by default;
 * without one its blocks are skipped with the reason in their name.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, it } from 'vitest';
import { BACKENDS, setupBackend } from '@gradmax/tfjs';

/** Backends the shared suites run on: every entry of BACKENDS that installs here (not native TensorFlow). */
export const TEST_BACKENDS = BACKENDS.filter((b): b is Exclude<(typeof BACKENDS)[number], 'tensorflow'> => b !== 'tensorflow');

/** A backend of {@link TEST_BACKENDS}. */
export type TestBackend = (typeof TEST_BACKENDS)[number];

/** SwiftShader's Vulkan driver, shipped by Debian's `chromium` package. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** The Vulkan driver file WebGPU cases use (`VK_ICD_FILENAMES`, else SwiftShader), or undefined when absent. */
export function vulkanDriver(): string | undefined {
  const file = process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD;
  return file.split(':').every((f) => existsSync(f)) ? file : undefined;
}

/** Why `backend` cannot run here, or undefined when it can. */
export function skipReason(backend: TestBackend): string | undefined {
  if (backend === 'webgpu' && !vulkanDriver()) return `no Vulkan driver at ${process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD} (apt-get install chromium for SwiftShader, or set VK_ICD_FILENAMES)`;
  return undefined;
}

/** Runs `fn(backend)` inside `describe("<name> [<backend>]")` for each backend, with the backend selected first. */
export function describeEachBackend(name: string, fn: (backend: TestBackend) => void, backends: readonly TestBackend[] = TEST_BACKENDS): void {
  for (const backend of backends) {
    const reason = skipReason(backend);
    if (reason) {
      describe.skip(`${name} [${backend}] — skipped: ${reason}`, () => {
        it('needs the backend', () => undefined);
      });
      continue;
    }
    describe(`${name} [${backend}]`, () => {
      beforeAll(async () => {
        if (backend === 'webgpu') process.env.VK_ICD_FILENAMES = vulkanDriver();
        await setupBackend(backend, { log: false });
      });
      fn(backend);
    });
  }
}
