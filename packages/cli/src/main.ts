/**
 * The `gradmax` command: dispatches `gradmax onnx ...` and `gradmax bench ...`.
 * @packageDocumentation
 */
import { EXIT_OK, EXIT_USAGE, type CliIO } from './shared/io.js';
import { reportError } from './shared/errors.js';

const HELP = `Usage: gradmax <command> [options]

Commands:
  onnx      widen layers of exported ONNX models (inspect, widen, verify)
  bench     run and report growth benchmarks (run, report, list)

Run "gradmax <command> --help" for details.
Exit codes: 0 ok, 1 verification/run failed, 2 usage or input error.
`;

/** Runs the `gradmax` command line with `argv` (without the node and script paths); returns the exit code. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) {
      io.stderr.write('gradmax: missing command (onnx, bench); see gradmax --help\n');
      return EXIT_USAGE;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      io.stdout.write(HELP);
      return EXIT_OK;
    }
    if (command === '--version' || command === '-V') {
      const { createRequire } = await import('node:module');
      const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
      io.stdout.write(`${pkg.version}\n`);
      return EXIT_OK;
    }
    if (command === 'onnx') {
      const { runOnnx, ensureStrategies } = await import('./onnx/index.js');
      // Every command resolves --strategy NAME against the registry: register the catalogue once, up front.
      await ensureStrategies();
      return await runOnnx(rest, io);
    }
    if (command === 'bench') {
      const { runBench } = await import('./bench/index.js');
      return await runBench(rest, io);
    }
    io.stderr.write(`gradmax: unknown command "${command}" (commands: onnx, bench); see gradmax --help\n`);
    return EXIT_USAGE;
  } catch (e) {
    return reportError(io, e);
  }
}
