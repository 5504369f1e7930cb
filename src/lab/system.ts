// Thin I/O for the lab: running `ip`, `sysctl` and commands inside namespaces, finding and stopping
// the processes that live in a namespace. Every failure names the command and what it printed.

import { execFile, spawn } from 'node:child_process';
import { access, constants, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AmbitError } from '../errors/index.ts';
import { LAB_ERRORS } from './errors.ts';
import type { IpStep } from './plan.ts';

const execFileP = promisify(execFile);

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (with `input` on its stdin); a non-zero exit is an error carrying its stderr. */
export async function run(cmd: string, args: string[], input?: string): Promise<string> {
  try {
    const child = execFileP(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    if (input !== undefined) child.child.stdin?.end(input);
    const { stdout } = await child;
    return stdout;
  } catch (cause) {
    const e = cause as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw missingTool(cmd, cause);
    const stderr = (e.stderr ?? '').trim();
    throw new AmbitError(LAB_ERRORS.COMMAND, `\`${cmd} ${args.join(' ')}\` failed: ${stderr || e.message}`, {
      cause,
    });
  }
}

export function ip(step: IpStep): Promise<string> {
  return run('ip', step.netns ? ['-n', step.netns, ...step.args] : step.args);
}

export async function setSysctls(netns: string, values: Record<string, string>): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  await run('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', ...args]);
}

/** Applies an nft script in a namespace as one transaction (`nft -f -`): all of it or none. */
export async function nftApply(netns: string, script: string): Promise<void> {
  await run('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], script);
}

/** The network namespaces on this host whose names start with `prefix`. */
export async function listNetns(prefix: string): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(prefix));
}

/** PIDs of every process whose network namespace is `netns`. */
export async function netnsPids(netns: string): Promise<number[]> {
  try {
    const out = await run('ip', ['netns', 'pids', netns]);
    return out
      .split('\n')
      .filter((s) => s.trim() !== '')
      .map(Number);
  } catch (err) {
    // Only a namespace that is really gone has no processes; any other failure must not pass for "none".
    if (!(await listNetns(netns)).includes(netns)) return [];
    throw err;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM every process in the namespace, then SIGKILL what is left after `graceMs`. */
export async function stopNetnsProcesses(netns: string, graceMs = 2_000): Promise<void> {
  const signalAll = (pids: number[], signal: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  };
  let pids = await netnsPids(netns);
  if (pids.length === 0) return;
  signalAll(pids, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    pids = pids.filter(isAlive);
    if (pids.length === 0) break;
  }
  signalAll(await netnsPids(netns), 'SIGKILL');
  for (let i = 0; i < 40 && (await netnsPids(netns)).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Per-namespace files that `ip netns exec` bind-mounts over /etc (a pod's resolv.conf). They live on the
 * host's disk, so they go with their namespace and a reboot's leftovers are found by prefix.
 */
const NETNS_ETC = '/etc/netns';

export async function writeNetnsResolvConf(netns: string, text: string): Promise<void> {
  const dir = join(NETNS_ETC, netns);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(join(dir, 'resolv.conf'), text, { mode: 0o644 });
}

/** The /etc/netns directories whose names start with `prefix`. */
export async function listNetnsEtc(prefix: string): Promise<string[]> {
  const names = await readdir(NETNS_ETC).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(prefix));
}

export async function removeNetnsEtc(netns: string): Promise<void> {
  await rm(join(NETNS_ETC, netns), { recursive: true, force: true });
}

export async function deleteNetns(netns: string): Promise<void> {
  await removeNetnsEtc(netns);
  try {
    await run('ip', ['netns', 'delete', netns]);
  } catch (err) {
    // Deleting a namespace that is already gone is success: cleanup is idempotent.
    const names = await listNetns(netns);
    if (names.includes(netns)) throw err;
  }
}

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  logFd: number;
  /**
   * Run as `ip netns exec` does: in a mount namespace of its own where the namespace's /etc files (its
   * resolv.conf) replace the host's, so the process resolves names as a pod does. Mounts the host adds
   * later (new pods' namespaces) still reach it (the mounts are slaves of the host's), but mounts it
   * makes stay its own: a process that adds pods (the control plane placing waypoint replicas) must not
   * have it, and enters the network namespace only (nsenter). Both exec, so the pid is kept.
   */
  ownEtc: boolean;
}

/** Starts a long-running command inside a namespace, detached, its output going to `logFd`. */
export function spawnInNetns(netns: string, argv: string[], opts: SpawnOptions): number {
  const [command, args]: [string, string[]] = opts.ownEtc
    ? ['ip', ['netns', 'exec', netns, ...argv]]
    : ['nsenter', [`--net=/run/netns/${netns}`, '--', ...argv]];
  const child = spawn(command, args, {
    detached: true,
    stdio: ['ignore', opts.logFd, opts.logFd],
    env: opts.env,
  });
  child.unref();
  // A spawn that fails later (EAGAIN, EMFILE) reports through 'error'; without a listener it would crash us.
  child.on('error', () => {});
  if (child.pid === undefined) {
    throw new AmbitError(LAB_ERRORS.COMMAND, `could not start \`${argv.join(' ')}\` in ${netns}`);
  }
  return child.pid;
}

export interface ExecOptions {
  env: NodeJS.ProcessEnv;
  /** Pass the caller's stdio through instead of capturing it (the CLI's `lab exec`). */
  inherit?: boolean;
  timeoutMs?: number;
  input?: string | Buffer;
}

/** Runs a command inside a namespace to completion and returns its exit code and output. */
export function execInNetns(netns: string, argv: string[], opts: ExecOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], {
      stdio: opts.inherit ? 'inherit' : ['pipe', 'pipe', 'pipe'],
      env: opts.env,
      timeout: opts.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    if (child.stdin) {
      child.stdin.on('error', () => {}); // the command may exit without reading its input
      child.stdin.end(opts.input ?? '');
    }
    child.on('error', (cause) => reject(missingTool('ip', cause)));
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 + signalNumber(signal) : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const n = (osConstants.signals as Record<string, number>)[signal];
  return n ?? 0;
}

/** The system tools the lab needs, each with the Debian package that brings it. */
export const LAB_TOOLS: Record<string, string> = {
  ip: 'iproute2',
  sysctl: 'procps',
  nft: 'nftables',
  nsenter: 'util-linux',
};

/** Throws when not root or when a tool is missing, saying how to fix it. */
export async function checkPrerequisites(tools: Record<string, string> = LAB_TOOLS): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new AmbitError(
      LAB_ERRORS.NOT_ROOT,
      'the lab creates network namespaces and needs root: run it as root (for example with sudo)',
    );
  }
  for (const [tool, pkg] of Object.entries(tools)) {
    if (!(await onPath(tool))) throw missingTool(tool, undefined, pkg);
  }
}

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      await access(`${dir}/${tool}`, constants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

function missingTool(tool: string, cause?: unknown, pkg = LAB_TOOLS[tool]): AmbitError {
  const fix = pkg ? `install it with \`apt-get install -y ${pkg}\`` : 'install it';
  return new AmbitError(LAB_ERRORS.MISSING_TOOL, `the \`${tool}\` command is not available: ${fix}`, {
    cause,
  });
}

/** Polls `probe` until it returns something other than undefined; throws AMBIT_ERR_LAB_TIMEOUT after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const why = last instanceof Error ? ` (last: ${last.message})` : '';
  throw new AmbitError(
    LAB_ERRORS.TIMEOUT,
    `timed out after ${timeoutMs / 1000} s waiting for ${what}${why}`,
    {
      cause: last,
    },
  );
}
