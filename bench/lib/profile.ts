/** Where a worker's CPU went: a V8 `.cpuprofile` (`node --cpu-prof`) summed by package and by function. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * `@aws-sdk/client-s3`, `tsx`, `src/activities/rekognition.ts`, `(node)`, or V8's own `(garbage collector)`, `(idle)`.
 */
export function ownerOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return '(node)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + 'node_modules/'.length).split('/');
    return scope?.startsWith('@') ? `${scope}/${name}` : (scope ?? url);
  }
  const source = url.search(/\/(src|infra|test)\//);
  return source >= 0 ? url.slice(source + 1) : url;
}

export interface ProfileSummary {
  totalSeconds: number;
  /** Seconds the worker's main thread ran JavaScript, V8 or Node, idle excluded. */
  busySeconds: number;
  /** Seconds of self time by owner, largest first. */
  byOwner: [owner: string, seconds: number][];
  byFunction: [fn: string, seconds: number][];
}

export function summarizeProfile(file: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const owners = new Map<string, number>();
  const functions = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const node = nodes.get(id);
    if (!node) return;
    const seconds = (profile.timeDeltas[i] ?? 0) / 1e6;
    const { functionName, url, lineNumber } = node.callFrame;
    const owner = ownerOf(url, functionName);
    owners.set(owner, (owners.get(owner) ?? 0) + seconds);
    const fn = `${functionName || '(anonymous)'} ${owner}${url ? `:${lineNumber + 1}` : ''}`;
    functions.set(fn, (functions.get(fn) ?? 0) + seconds);
  });
  const largest = (sums: Map<string, number>) =>
    [...sums.entries()]
      .filter(([name]) => !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top);
  return {
    totalSeconds: (profile.endTime - profile.startTime) / 1e6,
    busySeconds: [...owners.entries()].reduce((sum, [owner, seconds]) => (owner === '(idle)' ? sum : sum + seconds), 0),
    byOwner: largest(owners),
    byFunction: largest(functions),
  };
}
