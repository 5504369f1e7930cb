// Names a proxy resolves when it connects (a ServiceEntry's DNS endpoints): through the host's resolver
// (getaddrinfo: /etc/hosts, then the configured servers), shared and bounded. getaddrinfo runs on
// libuv's four threads, which certificate signing and file I/O share: a burst of connections to one
// name costs one lookup, not one each.

import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';

/** How long an answer is reused; lookups kept at most (the oldest name goes first); a failure is not kept. */
const REUSE_MS = 5_000;
const MAX_NAMES = 1024;
const kept = new Map<string, { at: number; answer: Promise<LookupAddress[]> }>();

function lookupShared(hostname: string): Promise<LookupAddress[]> {
  const now = Date.now();
  const found = kept.get(hostname);
  if (found && now - found.at < REUSE_MS) return found.answer;
  const answer = lookup(hostname, { all: true });
  const entry = { at: now, answer };
  kept.delete(hostname);
  if (kept.size >= MAX_NAMES) kept.delete(kept.keys().next().value!);
  kept.set(hostname, entry);
  answer.catch(() => {
    if (kept.get(hostname) === entry) kept.delete(hostname);
  });
  return answer;
}

/**
 * One of `hostname`'s addresses, picked at random (as Envoy's STRICT_DNS spreads over what it found);
 * rejects when the name does not resolve, no answer comes within `timeoutMs`, or `signal` aborts (the
 * shared lookup goes on for whoever else waits on it).
 */
export async function resolveOne(hostname: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    signal?.throwIfAborted();
    const answers = await Promise.race([
      lookupShared(hostname),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        onAbort = () => reject(signal?.reason ?? new Error('aborted'));
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    const chosen = answers[Math.floor(Math.random() * answers.length)];
    if (!chosen) throw new Error('no address');
    return chosen.address;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
