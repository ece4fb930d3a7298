import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryIO } from '../shared/io.js';
import { runBench } from './index.js';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'gradmax-cli-bench-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function bench(...argv: string[]) {
  const io = memoryIO({});
  const code = await runBench(argv, io);
  return { code, out: io.out, err: io.err };
}

describe('gradmax bench: usage errors give exit 2 and one clear line', () => {
  const cases: [string[], RegExp][] = [
    [[], /missing command/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['run', '--bogus'], /gradmax bench run: unknown option --bogus/],
    [['run', '--workers', 'many'], /--workers expects an integer/],
    [['run', '--workers'], /--workers needs a value|argument missing/],
    [['run', '--seeds', '0'], /--seeds/],
    [['run', '--shard', '3/2'], /--shard/],
    [['run', '--backend', 'gpu'], /unknown backend "gpu"/],
    [['run', '--backend', 'webgpu', '--task', 'teacher-student'], /task "teacher-student" cannot run on webgpu: it reads tensors synchronously/],
    [['run', '--task', 'imagenet'], /unknown task "imagenet"/],
    [['run', '--arm', 'gradmax,bogus'], /unknown arm "bogus"/],
    [['run', '--arm', 'bogus:sign=random'], /unknown arm "bogus:sign=random"/],
    [['run', '--arm', 'gradmax:sign'], /arm "gradmax:sign": "sign" is not key=value/],
    [['run', '--preset', 'huge'], /no preset "huge"/],
    [['run', '--set', 'steps=abc'], /config "steps"/],
    [['run', '--set', 'nokey=1'], /no config key "nokey"/],
    [['run', '--set', 'steps'], /--set expects NAME=VALUE/],
    [['run', 'extra'], /unexpected argument "extra"/],
    [['report'], /missing PATH/],
    [['report', '/definitely/not/here'], /no such file or directory/],
    [['list', '--yaml'], /unknown option --yaml/],
  ];
  for (const [argv, pattern] of cases) {
    it(`gradmax bench ${argv.join(' ')}`, async () => {
      const r = await bench(...argv);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(pattern);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    });
  }
});

describe('gradmax bench: help, list, run and report', () => {
  it('prints help for every command with exit 0', async () => {
    for (const argv of [['--help'], ['run', '--help'], ['report', '-h'], ['list', '--help']]) {
      const r = await bench(...argv);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^Usage: gradmax bench/);
    }
    expect((await bench('run', '--help')).out).toContain('--shard I/N');
  });

  it('lists tasks and arms, also as JSON', async () => {
    const text = await bench('list');
    expect(text.code).toBe(0);
    expect(text.out).toContain('teacher-student —');
    expect(text.out).toMatch(/not supported: allZero/);
    const json = await bench('list', '--json');
    const data = JSON.parse(json.out) as { tasks: { name: string; arms: string[] }[]; strategies: string[] };
    expect(data.tasks.map((t) => t.name)).toEqual(['teacher-student', 'mnist-mlp', 'mnist-cnn', 'fashion-mnist-mlp', 'fashion-mnist-cnn', 'mnist-resnet', 'fashion-mnist-resnet']);
    expect(data.strategies).toContain('gradmax');
  });

  it('runs a tiny grid with plain progress lines, writes the report, then skips finished runs', async () => {
    const out = await tmp();
    const args = ['run', '--task', 'teacher-student', '--preset', 'tiny', '--arm', 'gradmax,small', '--seeds', '1', '--workers', '0', '--backend', 'wasm', '--out', out];
    const r = await bench(...args);
    expect(r.err).toContain('backend: wasm');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/\[1\/2\] ok teacher-student\/gradmax\/seed 0/);
    expect(r.err).not.toContain('\r');
    expect(r.out).toMatch(/gradmax\s+1\s+\d/);
    expect(existsSync(path.join(out, 'report.md'))).toBe(true);
    expect(await readFile(path.join(out, 'report.md'), 'utf8')).toContain('## teacher-student · backend `wasm`');
    const again = await bench(...args);
    expect(again.code).toBe(0);
    expect(again.err).toContain('2 already done (use --force to re-run)');
    const report = await bench('report', out, '--title', 'Again');
    expect(report.code).toBe(0);
    expect(await readFile(path.join(out, 'report.md'), 'utf8')).toMatch(/^# Again/);
  });

  it('exits 1 when a run fails, and report exits 1 on a directory without results', async () => {
    const out = await tmp();
    const r = await bench('run', '--preset', 'tiny', '--arm', 'gradmax', '--seeds', '1', '--workers', '0', '--backend', 'wasm', '--out', out, '--set', 'strategyOptions={"gradmax":{"scaleMethod":"bogus"}}');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/failed: teacher-student\/gradmax\/seed 0: .*scaleMethod/);
    const empty = await tmp();
    const rep = await bench('report', empty);
    expect(rep.code).toBe(1);
    expect(rep.err).toContain('no successful results');
  });
});

describe('bench progress output', () => {
  const cell = { task: 't', arm: 'gradmax', seed: 3 };
  it('prints one plain line per finished run when not on a TTY', async () => {
    const { createProgress } = await import('./progress.js');
    let text = '';
    const p = createProgress({ write: (t: string) => (text += t) }, { tty: false });
    p.start(2);
    p.event({ type: 'start', cell, worker: 1 });
    p.event({ type: 'progress', cell, fraction: 0.5 });
    p.event({ type: 'done', cell, file: 'f', status: 'ok', totalMs: 1500 });
    p.event({ type: 'done', cell: { ...cell, seed: 4 }, file: '', status: 'failed', error: 'boom' });
    p.finish();
    expect(text).toBe('[1/2] ok t/gradmax/seed 3 (1.5 s)\n[2/2] FAILED t/gradmax/seed 4: boom\n');
  });

  it('redraws one line on a TTY', async () => {
    const { createProgress } = await import('./progress.js');
    let text = '';
    const p = createProgress({ write: (t: string) => (text += t) }, { tty: true, width: 4 });
    p.start(2);
    p.event({ type: 'start', cell, worker: 1 });
    p.event({ type: 'progress', cell, fraction: 0.5 });
    p.event({ type: 'done', cell, file: 'f', status: 'ok', totalMs: 10 });
    p.finish();
    expect(text).toContain('\r\x1b[2K[....] 0/2 · t/gradmax/seed 3 50%');
    expect(text).toContain('\r\x1b[2K[##..] 1/2');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(2);
  });
});
