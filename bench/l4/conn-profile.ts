// A V8 CPU profile (node:inspector's Profiler.stop result), summed by function: self time per function
// and location, as a share of the samples taken while the process was busy (idle left out).

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  fn: string;
  share: number;
}

export function topSelfTime(profile: CpuProfile, top = 15): SelfTime[] {
  const byFn = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    // Shares of the time the process was busy: idle is what the load left free.
    if (hits === 0 || functionName === '(idle)') continue;
    const where = url === '' ? '' : ` ${url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${lineNumber + 1}`;
    const fn = `${functionName || '(anonymous)'}${where}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + hits);
    total += hits;
  }
  return [...byFn]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, hits]) => ({ fn, share: hits / Math.max(1, total) }));
}
