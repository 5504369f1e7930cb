// Loads a rendered script into the kernel inside a network namespace of its own (`unshare -n`) that
// ends with the command, so nothing real is touched. Loading, not `nft -c`: the check mode stops before
// the kernel's commit-time validation (it accepts `reject` in a postrouting NAT chain, which the kernel
// refuses). Needs root and nft; callers skip loudly without them.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const canLoadNft =
  process.getuid?.() === 0 && ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].some((p) => existsSync(p));

export const NO_NFT_LOAD = 'NOT ROOT or no nft: loading the rendered script into the kernel was SKIPPED';

/** Resolves with `nft list ruleset` when the kernel takes the script; rejects with nft's stderr. */
export async function nftLoad(script: string): Promise<string> {
  const child = execFileP('unshare', ['-n', 'sh', '-c', 'nft -f - && nft list ruleset']);
  child.child.stdin?.end(script);
  return (await child).stdout;
}
