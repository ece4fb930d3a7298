/**
 * The browser page in a real browser: builds the Vite app, serves it, opens it in Debian's chromium (headless, through
 * playwright-core; no browser download), trains and grows the MLP on WebGPU (chromium's SwiftShader adapter here,
 * enabled with --enable-unsafe-webgpu) or on the fallback backend the page reports, and checks that the loss fell,
 * the widths grew, and the page logged no error. Saves a screenshot to test-output/browser-growth.png. Skipped,
 * with the reason in its name, when chromium is not installed.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.svg': 'image/svg+xml' };

/** What the page leaves in window.__growth after a run. */
interface PageRun {
  backend: string;
  adapter: { vendor: string; architecture: string; description: string; software: boolean } | null;
  skipped: { backend: string; reason: string }[];
  loss: { step: number[]; value: number[] };
  width: { names: string[]; step: number[]; value: number[][] };
  growths: { step: number; site: string; from: number; to: number }[];
  accuracy: number;
  seconds: number;
}

/** Serves a folder over http on a free port (localhost is a secure context, which WebGPU needs). */
async function serve(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const file = path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/\/$/, '/index.html'));
    if (!file.startsWith(root)) return void res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://localhost:${(server.address() as AddressInfo).port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const missing = existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

describe.skipIf(missing !== undefined)(`browser-growth page in chromium${missing ? ` — skipped: ${missing}` : ''}`, () => {
  let outDir = '';
  let site: { url: string; close: () => Promise<void> } | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    outDir = await mkdtemp(path.join(os.tmpdir(), 'gradmax-browser-growth-'));
    await build({ root: HERE, configFile: path.join(HERE, 'vite.config.js'), logLevel: 'error', build: { outDir, emptyOutDir: true } });
    site = await serve(outDir);
    // --enable-unsafe-webgpu: chromium on Linux exposes WebGPU only with it (here on its bundled SwiftShader).
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--enable-unsafe-webgpu', '--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  /** Opens the page with `query`, waits for the run to end, and returns its numbers and the page's errors. */
  async function runPage(query: string, screenshot?: string) {
    const page = await browser!.newPage({ viewport: { width: 1100, height: 820 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`${e.name}: ${e.message}`));
    await page.goto(`${site!.url}?autorun=1&${query}`);
    await page.waitForSelector('#status[data-state="done"], #status[data-state="error"]', { timeout: 50_000 });
    const status = (await page.textContent('#status')) ?? '';
    const run = (await page.evaluate(() => (window as unknown as { __growth?: unknown }).__growth)) as PageRun | undefined;
    const hasWebgpu = await page.evaluate(async () => {
      const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      return Boolean(gpu && (await gpu.requestAdapter()));
    });
    if (screenshot) {
      await mkdir(path.dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
    }
    await page.close();
    return { status, run, errors, hasWebgpu };
  }

  function checkRun(status: string, run: PageRun | undefined, errors: string[]): PageRun {
    expect(errors, `the page logged errors; status: ${status}`).toEqual([]);
    expect(status).toMatch(/done: /);
    expect(run).toBeDefined();
    const r = run!;
    // The loss fell: mean of the last 20 steps well below the first 20.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(r.loss.value.slice(0, 20));
    const last = mean(r.loss.value.slice(-20));
    expect(r.loss.value.every(Number.isFinite)).toBe(true);
    expect(last).toBeLessThan(0.8 * first);
    // The widths changed: both hidden layers grew 4 → 16 in three events.
    expect(r.width.value[0]).toEqual([4, 4]);
    expect(r.width.value.at(-1)).toEqual([16, 16]);
    expect(r.growths).toHaveLength(6);
    return r;
  }

  it('trains and grows with GradMax on WebGPU (or the fallback it reports), plots, and logs no error', async () => {
    const shot = path.join(HERE, 'test-output', 'browser-growth.png');
    const { status, run, errors, hasWebgpu } = await runPage('strategy=gradmax&steps=60&width=4&backend=webgpu', shot);
    const r = checkRun(status, run, errors);
    if (hasWebgpu) {
      expect(r.backend, `webgpu was skipped: ${JSON.stringify(r.skipped)}`).toBe('webgpu');
      expect(r.adapter).not.toBeNull();
      expect(status).toContain(`webgpu on ${r.adapter!.vendor}`);
    } else {
      // No adapter in this browser: the page fell back and says why.
      expect(['webgl', 'wasm', 'cpu']).toContain(r.backend);
      expect(r.skipped[0]!.backend).toBe('webgpu');
    }
    expect(existsSync(shot)).toBe(true);
  }, 60_000);

  it('falls back to wasm when asked, with another strategy from the menu', async () => {
    const { status, run, errors } = await runPage('strategy=random&steps=60&width=4&backend=wasm');
    const r = checkRun(status, run, errors);
    expect(r.backend).toBe('wasm');
  }, 60_000);
});
