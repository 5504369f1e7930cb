// What the CA issued to each node, so that revoking a node can revoke its certificates too: per node, the
// (issuer, serial, expiry) of every unexpired certificate it was given; on revocation those move to the
// revocation list that travels with the trust bundle, until they expire. Both are kept in the data
// directory (one small file per node, one for the list), written atomically before a certificate leaves.

import { X509Certificate } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { AmbitError } from '../../errors/index.ts';
import { type RevokedCertificate, revocationKey } from '../../identity/index.ts';
import { revokedCertificateEntry } from '../../xds/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';

/** Unexpired certificates one node may hold at once: ample for renewals at half life, bounded against a loop. */
export const DEFAULT_MAX_PER_NODE = 4096;

export interface IssuedCertificatesOptions {
  /** Where the records live (created 0700); without it they are kept in memory only (tests). */
  dir?: string;
  maxPerNode?: number;
  now?: () => number;
}

type Entry = RevokedCertificate & { expiresMs: number };

const REVOKED_FILE = 'revoked.json';

export class IssuedCertificates {
  private readonly byNode = new Map<string, Entry[]>();
  private revokedList: Entry[] = [];
  private readonly dir: string | undefined;
  private readonly maxPerNode: number;
  private readonly now: () => number;

  constructor(options: IssuedCertificatesOptions = {}) {
    this.dir = options.dir;
    this.maxPerNode = options.maxPerNode ?? DEFAULT_MAX_PER_NODE;
    this.now = options.now ?? Date.now;
    if (this.dir) this.load(this.dir);
  }

  /**
   * Records a certificate issued to `node`. Call it before the certificate is handed out: if it throws
   * (the node holds too many, or the record cannot be written), the certificate must not leave.
   */
  record(node: string, certPem: string): void {
    const cert = new X509Certificate(certPem);
    const now = this.now();
    const live = (this.byNode.get(node) ?? []).filter((e) => e.expiresMs > now);
    if (live.length >= this.maxPerNode) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_TOO_MANY_CERTIFICATES,
        `node "${node}" already holds ${live.length} unexpired certificates (the most is ${this.maxPerNode}): it is asking far more often than renewal needs`,
        { detail: { node, live: live.length, max: this.maxPerNode } },
      );
    }
    live.push(entryOf(cert));
    this.saveNode(node, live);
    this.byNode.set(node, live);
  }

  /**
   * Revokes every unexpired certificate issued to `node` so far (the node's credential was revoked).
   * Certificates issued after it rejoins are recorded afresh. Returns how many were revoked.
   */
  revokeNode(node: string): number {
    const now = this.now();
    const live = (this.byNode.get(node) ?? []).filter((e) => e.expiresMs > now);
    const known = new Set(this.revokedList.map((e) => revocationKey(e.issuer, e.serial)));
    const added = live.filter((e) => !known.has(revocationKey(e.issuer, e.serial)));
    const list = [...this.revokedList.filter((e) => e.expiresMs > now), ...added];
    // The list first: a crash between the two writes leaves the records, and a second revoke finishes.
    this.saveRevoked(list);
    this.revokedList = list;
    this.saveNode(node, []);
    this.byNode.delete(node);
    return added.length;
  }

  /** The unexpired revoked certificates, for the trust bundle resource. */
  revoked(): RevokedCertificate[] {
    const now = this.now();
    return this.revokedList
      .filter((e) => e.expiresMs > now)
      .map(({ issuer, serial, notAfter }) => ({ issuer, serial, notAfter }));
  }

  /** Unexpired certificates recorded for `node` (not revoked). */
  issuedTo(node: string): RevokedCertificate[] {
    const now = this.now();
    return (this.byNode.get(node) ?? [])
      .filter((e) => e.expiresMs > now)
      .map(({ issuer, serial, notAfter }) => ({ issuer, serial, notAfter }));
  }

  /** Drops expired entries everywhere; true when the revocation list changed (republish the bundle). */
  prune(): boolean {
    const now = this.now();
    for (const [node, entries] of this.byNode) {
      const live = entries.filter((e) => e.expiresMs > now);
      if (live.length === entries.length) continue;
      this.saveNode(node, live);
      if (live.length === 0) this.byNode.delete(node);
      else this.byNode.set(node, live);
    }
    const list = this.revokedList.filter((e) => e.expiresMs > now);
    if (list.length === this.revokedList.length) return false;
    this.saveRevoked(list);
    this.revokedList = list;
    return true;
  }

  private load(dir: string): void {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw unreadable(dir, err);
    }
    const now = this.now();
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const entries = readEntries(join(dir, name)).filter((e) => e.expiresMs > now);
      if (name === REVOKED_FILE) this.revokedList = entries;
      else if (name.startsWith('node-') && entries.length > 0)
        this.byNode.set(decodeURIComponent(name.slice(5, -5)), entries);
    }
  }

  private saveNode(node: string, entries: Entry[]): void {
    if (!this.dir) return;
    const path = join(this.dir, `node-${encodeURIComponent(node)}.json`);
    if (entries.length === 0) rmSync(path, { force: true });
    else writeAtomic(this.dir, path, entries);
  }

  private saveRevoked(entries: Entry[]): void {
    if (this.dir) writeAtomic(this.dir, join(this.dir, REVOKED_FILE), entries);
  }
}

function entryOf(cert: X509Certificate): Entry {
  const expiresMs = cert.validToDate.getTime();
  return {
    issuer: cert.issuer,
    serial: cert.serialNumber,
    notAfter: new Date(expiresMs).toISOString(),
    expiresMs,
  };
}

/** Temporary file, fsync, rename: a reader sees the old records or the new ones, never half. */
function writeAtomic(dir: string, path: string, entries: Entry[]): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(
        fd,
        JSON.stringify(entries.map(({ issuer, serial, notAfter }) => ({ issuer, serial, notAfter }))),
      );
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    throw new AmbitError(
      CONTROL_ERRORS.CA_RECORD_UNWRITABLE,
      `cannot record issued certificates in ${dir}: ${(err as Error).message}; no certificate is issued until it can`,
      { cause: err, detail: { path } },
    );
  }
}

function readEntries(path: string): Entry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw unreadable(path, err);
  }
  if (!Array.isArray(parsed)) throw unreadable(path, new Error('not a JSON array'));
  return parsed.map((e: unknown) => {
    const entry = revokedCertificateEntry.safeParse(e);
    const expiresMs = entry.success ? Date.parse(entry.data.notAfter) : Number.NaN;
    if (!entry.success || !Number.isFinite(expiresMs))
      throw unreadable(path, new Error(`bad record ${JSON.stringify(e).slice(0, 200)}`));
    const { issuer, serial, notAfter } = entry.data;
    return { issuer, serial, notAfter, expiresMs };
  });
}

function unreadable(path: string, cause: unknown): AmbitError {
  // Refuse to start rather than forget a revocation: a lost list would make revoked certificates valid again.
  return new AmbitError(
    CONTROL_ERRORS.CA_RECORDS_UNREADABLE,
    `the issued-certificate records at ${path} are unreadable (${(cause as Error).message}); restore them from a backup — starting without them would accept revoked certificates again`,
    { cause, detail: { path } },
  );
}
