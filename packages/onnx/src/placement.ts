/**
 * Which execution provider ran each node. onnxruntime assigns every node to the first provider in the list that has
 * a kernel for it and falls back to the CPU provider for the rest (WebGPU, CUDA); it reports the assignment only in its
 * profile. For a non-cpu provider the session is profiled into a temporary file, read once the session is released,
 * and the file deleted.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Where the nodes of one session ran. */
export interface NodePlacement {
  /** The provider asked for (`"webgpu"`, `"cuda"`). */
  executionProvider: string;
  /** Nodes that ran at least once, by provider name as onnxruntime spells it (`WebGpuExecutionProvider`: 12). */
  nodesByProvider: Record<string, number>;
  /** Nodes that fell back to the CPU provider: node name and op type. */
  cpuFallback: { node: string; op: string }[];
}

/** A pending profile: session options to merge, and how to read the placement once the session is released. */
export interface PlacementProfile {
  /** Session options enabling the profile (empty for the cpu provider). */
  sessionOptions: { enableProfiling?: boolean; profileFilePrefix?: string };
  /** Reads and deletes the profile; undefined for the cpu provider or when no node ran. */
  read(): NodePlacement | undefined;
}

let counter = 0;

/** Starts a placement profile for a session on `executionProvider` (nothing to do for `cpu`). */
export function placementProfile(executionProvider: string): PlacementProfile {
  if (executionProvider === 'cpu') return { sessionOptions: {}, read: () => undefined };
  const dir = os.tmpdir();
  const base = `gradmax-ort-${process.pid}-${Date.now()}-${counter++}`;
  return {
    sessionOptions: { enableProfiling: true, profileFilePrefix: path.join(dir, base) },
    read: () => {
      const files = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'));
      const byNode = new Map<string, { op: string; provider: string }>();
      for (const f of files) {
        const file = path.join(dir, f);
        try {
          const events = JSON.parse(fs.readFileSync(file, 'utf8')) as { cat?: string; name?: string; args?: { op_name?: string; provider?: string } }[];
          for (const e of events) {
            if (e.cat !== 'Node' || !e.args?.provider || !e.name) continue;
            // Event names are `<node>_kernel_time`, `<node>_fence_before`, ...: keep the node name.
            const node = e.name.replace(/_(kernel_time|fence_before|fence_after)$/, '');
            byNode.set(node, { op: e.args.op_name ?? '', provider: e.args.provider });
          }
        } catch {
          // An unreadable profile only loses the report.
        } finally {
          fs.rmSync(file, { force: true });
        }
      }
      if (!byNode.size) return undefined;
      const nodesByProvider: Record<string, number> = {};
      const cpuFallback: { node: string; op: string }[] = [];
      for (const [node, { op, provider }] of byNode) {
        nodesByProvider[provider] = (nodesByProvider[provider] ?? 0) + 1;
        if (provider === 'CPUExecutionProvider') cpuFallback.push({ node, op });
      }
      cpuFallback.sort((a, b) => a.node.localeCompare(b.node));
      return { executionProvider, nodesByProvider, cpuFallback };
    },
  };
}

/** One line: `webgpu: 30 nodes on WebGpuExecutionProvider, 6 fell back to CPU (Gather ×2, Range, ...)`. */
export function describePlacement(p: NodePlacement): string {
  const counts = Object.entries(p.nodesByProvider).map(([k, v]) => `${v} on ${k}`).join(', ');
  if (!p.cpuFallback.length) return `${p.executionProvider}: ${counts}; no node fell back to CPU`;
  const ops = new Map<string, number>();
  for (const f of p.cpuFallback) ops.set(f.op, (ops.get(f.op) ?? 0) + 1);
  return `${p.executionProvider}: ${counts}; fell back to CPU: ${[...ops].map(([op, n]) => (n > 1 ? `${op} ×${n}` : op)).join(', ')}`;
}
