// Test helpers for the lab: a throwaway lab with its own name and data directory, always destroyed
// when the test ends (even when it fails), and a loud skip when not root.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Lab, waitUntil } from '../../src/lab/index.ts';
import { ambit, type CliResult } from './control.ts';

export const isRoot = process.getuid?.() === 0;

/** Skips the test with a message nobody can miss when not root. Returns true when skipped. */
export function skipUnlessRoot(t: TestContext): boolean {
  if (isRoot) return false;
  const msg = 'NOT ROOT: this lab end-to-end test needs root and was SKIPPED (CI runs it as root)';
  console.error(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return true;
}

export interface TestLab {
  lab: Lab;
  home: string;
}

/** A lab named `t<random>` in a temp data directory; `down` and the directory removal run in t.after. */
export async function withLab(t: TestContext, nodes = 2): Promise<TestLab> {
  const home = await mkdtemp(join(tmpdir(), 'ambit-test-'));
  const lab = new Lab({ home, name: `t${randomBytes(4).toString('hex')}` });
  t.after(async () => {
    await lab.down();
    await rm(home, { recursive: true, force: true });
  });
  await lab.up(nodes);
  return { lab, home };
}

/**
 * curl's exit codes for a connection the server reset: 56 after the connect, 7 when the RST beat it,
 * 55 when it landed between the connect and curl's getpeername() ("Transport endpoint is not
 * connected"). Never 52 (a clean close) or 28 (a timeout).
 */
export const CURL_RESET = [56, 7, 55];

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export function eventually<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  return waitUntil(what, timeoutMs, fn);
}

export interface CliLab {
  home: string;
  /** The lab's name (`AMBIT_LAB`). */
  name: string;
  /** The environment every command runs with: its own AMBIT_HOME and lab name. */
  env: NodeJS.ProcessEnv;
  lab: Lab;
  /** Runs `ambit ARGS` as a user types it; never throws. */
  ambit: (args: string[], input?: string) => Promise<CliResult>;
  /** `ambit`, asserting it exits 0 (the message carries its stderr). */
  ok: (args: string[], input?: string) => Promise<CliResult>;
  /** `ambit down` and the data directory removed: call it from the test's own `t.after`. */
  down: () => Promise<void>;
}

/**
 * The CLI against a mesh of its own (as the end-to-end tests that run `ambit demo` need): a temp
 * AMBIT_HOME and a lab named `<prefix><random>`. Nothing is started; the test registers `down`.
 */
export async function cliLab(prefix: string): Promise<CliLab> {
  const home = await mkdtemp(join(tmpdir(), `ambit-${prefix}-`));
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  const env = { AMBIT_HOME: home, AMBIT_LAB: name };
  const run = (args: string[], input?: string) => ambit(args, env, input);
  return {
    home,
    name,
    env,
    lab: new Lab({ home, name }),
    ambit: run,
    ok: async (args, input) => {
      const r = await run(args, input);
      assert.equal(r.code, 0, `ambit ${args.join(' ')}: ${r.stderr}`);
      return r;
    },
    down: async () => {
      await run(['down']);
      await rm(home, { recursive: true, force: true });
    },
  };
}
