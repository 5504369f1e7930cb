// Runs the real `ambit control` (and other `ambit` commands) as child processes for CLI tests.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';

export const AMBIT = resolve(import.meta.dirname, '../../bin/ambit.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `ambit …` to completion. */
export function ambit(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [AMBIT, ...args], {
      env: { ...process.env, AMBIT_LOG_LEVEL: 'warn', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
    child.stdin.on('error', () => {}); // a command may exit before reading all of its input
    child.stdin.end(input ?? '');
  });
}

export interface RunningControl {
  dataDir: string;
  server: string;
  /** The TCP admin listener (`http://127.0.0.1:PORT`) when started with --admin-listen. */
  adminUrl?: string;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `ambit control` on a fresh (or given) data directory, with extra flags; stopped when the test ends. */
export async function startControl(
  t: TestContext,
  dataDir?: string,
  extraArgs: string[] = [],
): Promise<RunningControl> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'ambit-cp-')));
  const child = spawn(
    process.execPath,
    [AMBIT, 'control', '--data-dir', dir, '--grpc-listen', '127.0.0.1:0', ...extraArgs],
    {
      env: { ...process.env, AMBIT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  t.after(() => stop());
  // after() hooks run in the order they were added: stop first, then remove what it was using.
  if (!dataDir) t.after(() => rm(dir, { recursive: true, force: true }));
  const ready = await new Promise<string>((resolvePromise, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('control plane ready')) resolvePromise(out);
    });
    child.once('exit', (code) =>
      reject(new Error(`ambit control exited with ${code} before it was ready: ${out}`)),
    );
  });
  const adminUrl = /(http:\/\/[^\s]+) \(bearer tokens\)/.exec(ready)?.[1];
  return { dataDir: dir, server: `unix:${join(dir, 'admin.sock')}`, adminUrl, child, stop };
}
