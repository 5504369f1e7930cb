// Pods as a cluster's API has them: which workload runs where, with which service account and labels.
// This is the operator's word, never a node's: the CA signs an identity for a node only because a pod
// (or an operator's WorkloadEntry) places it there. In the lab the pod API is the lab's state file,
// owned by the operator who runs `ambit lab`; the control plane polls it and keeps the last good read.

import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { AmbitError, describeError } from '../errors/index.ts';
import { labPods } from '../lab/index.ts';
import { logger } from '../log/index.ts';
import { CONTROL_ERRORS } from './errors.ts';
import type { LabPod } from './registry/index.ts';

const log = logger('pods');

export interface PodSource {
  /** The pods as last read (the last good read when the source is unreadable). */
  pods(): readonly LabPod[];
  /** Reads the source now; calls `onChange` when the pods differ from the last read. */
  refresh(): Promise<void>;
  close(): void;
}

/** The lab's pods, from its state file, re-read when the file changes (polled; renames defeat fs.watch). */
export class LabPodSource implements PodSource {
  private readonly file: string;
  private readonly onChange: () => void;
  private current: readonly LabPod[] = [];
  private seen = '';
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;

  constructor(opts: { file: string; onChange: () => void; everyMs?: number }) {
    this.file = opts.file;
    this.onChange = opts.onChange;
    this.timer = setInterval(() => void this.refresh(), opts.everyMs ?? 250);
    this.timer.unref();
  }

  pods(): readonly LabPod[] {
    return this.current;
  }

  refresh(): Promise<void> {
    // One read at a time; a caller during a read waits for that read.
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    try {
      const st = await stat(this.file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      const dir = await stat(dirname(this.file));
      const stamp = st
        ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.uid}:${st.mode}:${dir.uid}:${dir.mode}`
        : 'absent';
      if (stamp === this.seen) return;
      this.seen = stamp; // a bad file is reported once, and read again when it changes
      // The pod list decides which identities each node may get: only its owner may be able to write it.
      if (st)
        for (const [what, s] of [[dirname(this.file), dir] as const, [this.file, st] as const])
          requireTrusted(what, s);
      const pods = (await labPods(this.file)).sort((a, b) =>
        `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
      );
      if (isDeepStrictEqual(pods, this.current)) return;
      this.current = pods;
      log.info({ file: this.file, pods: pods.length }, 'lab pods changed');
      this.onChange();
    } catch (err) {
      // Keep serving the last good set: a torn or bad file must not take pods out of the mesh.
      log.warn(
        { err: describeError(err), file: this.file },
        'cannot read the lab pods; keeping the last good set',
      );
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** Throws unless `s` belongs to root or this process's user and nobody else may write it. */
function requireTrusted(path: string, s: Stats): void {
  const me = process.getuid?.() ?? 0;
  if ((s.uid === 0 || s.uid === me) && (s.mode & 0o022) === 0) return;
  throw new AmbitError(
    CONTROL_ERRORS.LAB_STATE_UNTRUSTED,
    `${path} is owned by uid ${s.uid} with mode ${(s.mode & 0o777).toString(8)}: another user could place pods (and so identities) on nodes; make it owned by the operator and not group- or world-writable (chmod go-w)`,
  );
}
