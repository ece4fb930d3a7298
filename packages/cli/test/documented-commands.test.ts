/**
 * Every command line shown in the docs runs, exactly as written, through the built `gradmax` binary.
 *
 * The rule:
 * - Sources: docs/*.md, README.md, packages/*\/README.md, examples/README.md and examples/**\/README.md.
 * - A command is a line of a fenced ```sh / ```bash / ```shell block whose first word is `gradmax`, `pnpm`,
 *   `node`, `npx` or `npm`; a trailing `\` continues it on the next line. Synopses with `[optional]` parts belong
 *   in ```text blocks, which are not run.
 * - Each command runs with `sh -c` (quoting, redirections and trailing `# comments` as a reader's shell sees them)
 *   in one temporary folder per document, in document order, with `gradmax` on PATH as the built
 *   packages/cli/dist/bin.js and the fixture files of {@link writeDocFixtures} (model.onnx, x.npy, y.npy).
 * - A command must exit 0, unless it matches an entry of {@link SKIPS}, each with its reason. A skip that no
 *   longer matches any documented command fails the test, so the list cannot go stale.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../onnx/test/helpers.js';
import { writeDocFixtures } from './doc-fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = path.join(ROOT, 'packages/cli/dist/bin.js');

/** Documented commands not run here, and why. */
const SKIPS: { match: RegExp; reason: string }[] = [
  { match: /^npm i -g pnpm/, reason: 'global install of the package manager (changes the machine, needs the registry)' },
  { match: /^pnpm install\b/, reason: 'installs the monorepo from the registry; the test itself runs in an installed clone' },
  { match: /^pnpm demo\b/, reason: 'rebuilds every package, then the full teacher-student run (about a minute on 2 cores); its run and report commands are shown in docs/harness.md with a --preset tiny fixture' },
  { match: /^pnpm test\b/, reason: 'runs every test suite, this one included (recursive)' },
  { match: /^pnpm vitest run (packages|examples)\//, reason: 'runs a test file of the monorepo (it runs in the suite itself), not a command of the temporary folder' },
  { match: /^gradmax bench run --task mnist-cnn --backend webgpu\b/, reason: 'runs in packages/cli/test/bench-webgpu.test.ts, with a timeout fit for SwiftShader compiling its shaders (slower than the 30 s per command here), next to the same run on wasm' },
  { match: /^pnpm --filter @gradmax\/example-browser-growth start$/, reason: "Vite's dev server, which serves until stopped; examples/browser-growth/browser-growth.test.ts builds and opens the same page in chromium" },
  { match: /^npm i @gradmax\/onnx\b/, reason: 'installs from the npm registry (network)' },
  { match: /^gradmax bench run --task teacher-student --out gradmax-report$/, reason: 'the full teacher-student task (about a minute on 2 cores); the same command with --preset tiny runs in docs/getting-started.md and packages/harness/README.md' },
  { match: /^gradmax bench run --task mnist-mlp\b/, reason: 'downloads MNIST and trains for minutes' },
  { match: /^gradmax bench run --task teacher-student --seeds 0-9 --out sign-ts\b/, reason: 'the full sign experiment (70 runs, several minutes on 2 cores); the same variant arms run with --preset tiny right below it in docs/harness.md' },
  { match: /^gradmax bench run --task teacher-student --preset notebook\b/, reason: "the notebook's full-size preset (minutes)" },
  { match: /^pnpm --filter @gradmax\/onnx build$/, reason: 'builds the package inside the workspace; this test runs documents in a scratch folder, after the workspace build' },
  { match: /^pnpm --filter @gradmax\/onnx bench$/, reason: "every benchmark of @gradmax/onnx, including the full growability run over the torchvision corpus (tens of minutes; needs Debian's python3-torch)" },
  { match: /^node packages\/onnx\/bench\/growability\.mjs --json growability\.json$/, reason: 'the full growability benchmark over the exported corpus (tens of minutes; needs the corpus or python3-torch)' },
];

/** The Vulkan driver WebGPU commands run on: `VK_ICD_FILENAMES`, else SwiftShader from Debian's chromium when installed. */
const VULKAN_CANDIDATE = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
const VULKAN_DRIVER = VULKAN_CANDIDATE.split(':').every((f) => fs.existsSync(f)) ? VULKAN_CANDIDATE : undefined;
if (!VULKAN_DRIVER) SKIPS.push({ match: /--execution-provider webgpu\b/, reason: 'needs a Vulkan driver (apt-get install chromium for SwiftShader); none on this machine' });

/** Fixture files per document, beyond {@link writeDocFixtures}. */
const EXTRA_FIXTURES: Record<string, (dir: string) => void> = {
  // `gradmax bench report gradmax-report` reads the output of the (skipped) full run: a tiny run stands in.
  'docs/harness.md': (dir) => {
    const r = spawnSync(process.execPath, [BIN, 'bench', 'run', '--task', 'teacher-student', '--preset', 'tiny', '--arm', 'gradmax,random', '--seeds', '1', '--out', 'gradmax-report'], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: '1' } });
    if (r.status !== 0) throw new Error(`fixture run failed: ${r.stderr}`);
  },
};

const COMMAND = /^(gradmax|pnpm|node|npx|npm)(\s|$)/;

/** Markdown files whose command lines are checked. */
function documents(): string[] {
  const files = ['README.md'];
  const add = (dir: string, recursive: boolean) => {
    const abs = path.join(ROOT, dir);
    if (!fs.existsSync(abs)) return;
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory() && recursive && entry.name !== 'node_modules') add(rel, true);
      else if (entry.isFile() && entry.name.endsWith('.md') && (dir === 'docs' || entry.name === 'README.md')) files.push(rel);
    }
  };
  add('docs', false);
  for (const p of fs.readdirSync(path.join(ROOT, 'packages'))) if (fs.existsSync(path.join(ROOT, 'packages', p, 'README.md'))) files.push(path.join('packages', p, 'README.md'));
  add('examples', true);
  return [...new Set(files)].sort();
}

/** The command lines of one markdown text (see the rule at the top of this file). */
export function extractCommands(markdown: string): string[] {
  const commands: string[] = [];
  let inShell = false;
  let inFence = false;
  let pending: string | undefined;
  for (const raw of markdown.split('\n')) {
    const line = raw.trimEnd();
    const fence = /^\s*```(\S*)/.exec(line);
    if (fence) {
      if (inFence) {
        inFence = false;
        inShell = false;
      } else {
        inFence = true;
        inShell = ['sh', 'bash', 'shell'].includes(fence[1]!);
      }
      pending = undefined;
      continue;
    }
    if (!inShell) continue;
    if (pending !== undefined) {
      pending += ` ${line.trim()}`;
    } else if (COMMAND.test(line.trim())) {
      pending = line.trim();
    } else continue;
    if (pending.endsWith('\\')) pending = pending.slice(0, -1).trimEnd();
    else {
      commands.push(pending);
      pending = undefined;
    }
  }
  return commands;
}

/** A command without its trailing comment, whitespace collapsed (what skips match against). */
function normalized(command: string): string {
  return command.replace(/\s+#.*$/, '').replace(/\s+/g, ' ').trim();
}

describe('documented command lines', () => {
  const docs = documents();
  const all = docs.map((doc) => ({ doc, commands: extractCommands(fs.readFileSync(path.join(ROOT, doc), 'utf8')) }));

  it('finds the documented commands, and every skip still matches one', () => {
    expect(fs.existsSync(BIN), 'build the CLI first (pnpm --filter @gradmax/cli build)').toBe(true);
    const flat = all.flatMap((d) => d.commands.map(normalized));
    expect(flat.some((c) => c.startsWith('gradmax onnx widen model.onnx --data'))).toBe(true);
    for (const skip of SKIPS) expect(flat.some((c) => skip.match.test(c)), `stale skip ${skip.match}`).toBe(true);
  });

  it('extracts continued lines and ignores synopses outside shell blocks', () => {
    const md = ['```text', 'gradmax onnx inspect MODEL [--json]', '```', '```sh', '# comment', 'gradmax a \\', '   --b c  # note', 'echo no', 'pnpm x', '```'].join('\n');
    expect(extractCommands(md)).toEqual(['gradmax a --b c  # note', 'pnpm x']);
  });

  for (const { doc, commands } of all) {
    if (commands.length === 0) continue;
    it(`${doc}: ${commands.length} command(s) run as written`, () => {
      const dir = tmpDir('gradmax-docs-');
      writeDocFixtures(dir);
      EXTRA_FIXTURES[doc]?.(dir);
      const bin = path.join(dir, '.bin');
      fs.mkdirSync(bin);
      fs.writeFileSync(path.join(bin, 'gradmax'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
      const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, CI: '1', ...(VULKAN_DRIVER ? { VK_ICD_FILENAMES: VULKAN_DRIVER } : {}) };
      let ran = 0;
      for (const command of commands) {
        if (SKIPS.some((s) => s.match.test(normalized(command)))) continue;
        const r = spawnSync('sh', ['-c', command], { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
        expect(r.status, `${doc}: \`${command}\` exited ${r.status ?? r.signal}\n${r.stderr}\n${r.stdout}`).toBe(0);
        ran++;
      }
      expect(ran + commands.filter((c) => SKIPS.some((s) => s.match.test(normalized(c)))).length).toBe(commands.length);
    }, 60_000);
  }
});
