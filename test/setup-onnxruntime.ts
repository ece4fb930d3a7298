// Setup of the projects that run onnxruntime: its native logger writes straight to the process's stderr (no
// console to filter), e.g. the provider-library error line of every test that asks for the cuda execution provider
// and gets the typed error it expects. Keep it to fatal messages unless GRADMAX_ORT_LOG is set (then: its default).
import { createRequire } from 'node:module';

if (!process.env.GRADMAX_ORT_LOG) {
  const ort = createRequire(new URL('../packages/onnx/package.json', import.meta.url))('onnxruntime-node') as { env: { logLevel?: string } };
  ort.env.logLevel = 'fatal';
}
