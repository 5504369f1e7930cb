// The lab's record of what it made: one JSON file per lab in the data directory, written atomically
// (temp file + rename) and guarded by a lock so that two invocations never interleave their changes.

import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { z } from 'zod';
import { AmbitError } from '../errors/index.ts';
import { LAB_ERRORS } from './errors.ts';

const processRecord = z.object({
  pid: z.number().int().positive(),
  command: z.array(z.string()),
  log: z.string(),
  startedAt: z.string(),
});

const podRecord = z.object({
  name: z.string(),
  node: z.string(),
  address: z.string(),
  host: z.number().int(),
  namespace: z.string(),
  serviceAccount: z.string(),
  labels: z.record(z.string(), z.string()),
  processes: z.array(processRecord),
});

const labState = z.object({
  version: z.literal(1),
  name: z.string(),
  nodes: z.number().int().positive(),
  createdAt: z.string(),
  nodeProcesses: z.record(z.string(), z.array(processRecord)),
  pods: z.array(podRecord),
  /** Infrastructure hosts on the bridge (etcd members, control-plane replicas); their processes are in nodeProcesses. */
  hosts: z.array(z.string()).default([]),
});

export type ProcessRecord = z.infer<typeof processRecord>;
export type PodRecord = z.infer<typeof podRecord>;
export type LabState = z.infer<typeof labState>;

/** `$AMBIT_HOME` (default /var/lib/ambit): where Ambit keeps its state on this host. */
export function ambitHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.AMBIT_HOME && env.AMBIT_HOME !== '' ? env.AMBIT_HOME : '/var/lib/ambit';
}

export class LabStore {
  readonly dir: string;
  readonly logDir: string;
  readonly file: string;

  constructor(home: string, lab: string) {
    this.dir = join(home, 'labs', lab);
    this.logDir = join(this.dir, 'logs');
    this.file = join(this.dir, 'state.json');
  }

  /** The lab's state, or undefined when no lab of this name is up. A corrupt file is an error. */
  async load(): Promise<LabState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw corrupt(this.file, 'it is not JSON', cause);
    }
    const result = labState.safeParse(parsed);
    if (!result.success) throw corrupt(this.file, z.prettifyError(result.error), result.error);
    return result.data;
  }

  async save(state: LabState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.file);
  }

  /** Removes the lab's directory: state, logs and lock. */
  async erase(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Runs `fn` holding the lab's lock. A lock left by a killed process goes stale after a few
   * seconds and is taken over, so a crash never wedges the lab.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.dir, {
        lockfilePath: `${this.dir}.lock`,
        realpath: false,
        stale: 5_000,
        update: 1_000,
        retries: { retries: 100, minTimeout: 50, maxTimeout: 200 },
      });
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ELOCKED') throw cause;
      throw new AmbitError(
        LAB_ERRORS.LOCKED,
        `another ambit command holds the lab lock ${this.dir}.lock; wait for it to finish`,
        { cause },
      );
    }
    try {
      return await fn();
    } finally {
      await release().catch(() => {});
    }
  }
}

function corrupt(file: string, why: string, cause: unknown): AmbitError {
  return new AmbitError(
    LAB_ERRORS.STATE_CORRUPT,
    `lab state ${file} is unreadable (${why}); run \`ambit lab down\` to clean up and start again`,
    { cause },
  );
}

/**
 * Every pod of a lab, read from its state file: the lab stands in for a cluster's pod API, so the
 * control plane (not a node) reads it to learn which workloads run where, as istiod reads pods.
 */
export async function labPods(stateFile: string): Promise<
  Array<{
    name: string;
    namespace: string;
    node: string;
    serviceAccount: string;
    labels: Record<string, string>;
    address: string;
  }>
> {
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw corrupt(stateFile, 'it is not JSON', cause);
  }
  const parsed = labState.safeParse(json);
  if (!parsed.success) throw corrupt(stateFile, z.prettifyError(parsed.error), parsed.error);
  return parsed.data.pods.map((p) => ({
    name: p.name,
    namespace: p.namespace,
    node: p.node,
    serviceAccount: p.serviceAccount,
    labels: p.labels,
    address: p.address,
  }));
}
