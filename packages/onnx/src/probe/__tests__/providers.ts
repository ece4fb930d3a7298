/**
 * One suite, every onnxruntime execution provider (in the style of tfjs-core's `describeWithFlags`):
 * `describeEachProvider(name, fn)` runs `fn(provider)` once per provider of {@link TEST_PROVIDERS}. The WebGPU provider
 * runs on whatever Vulkan driver `VK_ICD_FILENAMES` names, SwiftShader (Debian's chromium) by default; without one
 * its blocks are skipped with the reason in their name.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, it } from 'vitest';

/** Execution providers the shared suites run on. */
export const TEST_PROVIDERS = ['cpu', 'webgpu'] as const;

/** A provider of {@link TEST_PROVIDERS}. */
export type TestProvider = (typeof TEST_PROVIDERS)[number];

/** SwiftShader's Vulkan driver, shipped by Debian's `chromium` package. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** The Vulkan driver file WebGPU cases use (`VK_ICD_FILENAMES`, else SwiftShader), or undefined when absent. */
export function vulkanDriver(): string | undefined {
  const file = process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD;
  return file.split(':').every((f) => existsSync(f)) ? file : undefined;
}

/** Why `provider` cannot run here, or undefined when it can. */
export function providerSkipReason(provider: TestProvider): string | undefined {
  if (provider === 'webgpu' && !vulkanDriver()) return `no Vulkan driver at ${process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD} (apt-get install chromium for SwiftShader, or set VK_ICD_FILENAMES)`;
  return undefined;
}

/** Runs `fn(provider)` inside `describe("<name> [<provider>]")` for each provider (the Vulkan driver set for webgpu). */
export function describeEachProvider(name: string, fn: (provider: TestProvider) => void, providers: readonly TestProvider[] = TEST_PROVIDERS): void {
  for (const provider of providers) {
    const reason = providerSkipReason(provider);
    if (reason) {
      describe.skip(`${name} [${provider}] — skipped: ${reason}`, () => {
        it('needs the provider', () => undefined);
      });
      continue;
    }
    describe(`${name} [${provider}]`, () => {
      beforeAll(() => {
        if (provider === 'webgpu') process.env.VK_ICD_FILENAMES = vulkanDriver();
      });
      fn(provider);
    });
  }
}
