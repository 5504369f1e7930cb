// Join tokens: issued by the control plane for a named node, exchanged once for a node credential.
// Only a SHA-256 of each token is kept, so a leaked token list cannot be replayed.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { AmbitError } from '../../errors/index.ts';
import { nodeId } from '../../identity/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';

export interface IssuedToken {
  token: string;
  node: string;
  expiresAt: Date;
}

interface TokenRecord {
  node: string;
  expiresAt: number;
  state: 'open' | 'used' | 'revoked';
}

const PREFIX = 'ambit-join-';

/** What is kept of a secret token: its SHA-256, hex. Also used for the admin API's tokens. */
export function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** `file` parsed as JSON; undefined when it does not exist; `unreadable(cause)` is thrown otherwise. */
export function readJsonIfPresent(file: string, unreadable: (cause: unknown) => Error): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(err);
  }
}

/** Replaces `file` with `value` as JSON, readable by the owner only, in one rename. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  renameSync(tmp, file);
}

export class JoinTokens {
  private readonly records = new Map<string, TokenRecord>();
  private readonly now: () => number;
  private readonly file: string | undefined;

  /**
   * With `file`, tokens survive a control plane restart: the digests (never the tokens) are kept there,
   * rewritten atomically on every change; expired ones are dropped when it is read.
   */
  constructor(options: { now?: () => number; file?: string } = {}) {
    this.now = options.now ?? Date.now;
    this.file = options.file;
    if (this.file) this.load(this.file);
  }

  private load(file: string): void {
    const parsed = readJsonIfPresent(
      file,
      (cause) =>
        new AmbitError(
          CONTROL_ERRORS.CA_TOKENS_UNREADABLE,
          `the join token file ${file} is unreadable; move it aside to start without pending tokens`,
          { cause },
        ),
    );
    if (parsed === undefined) return;
    const now = this.now();
    for (const [key, r] of Object.entries((parsed ?? {}) as Record<string, Partial<TokenRecord>>)) {
      const ok =
        /^[0-9a-f]{64}$/.test(key) &&
        typeof r.node === 'string' &&
        typeof r.expiresAt === 'number' &&
        (r.state === 'open' || r.state === 'used' || r.state === 'revoked');
      if (ok && r.expiresAt! > now) this.records.set(key, r as TokenRecord);
    }
  }

  private save(): void {
    if (!this.file) return;
    writeJsonAtomic(this.file, Object.fromEntries(this.records));
  }

  /** A new single-use token for `node`, valid for `ttlSeconds` (default one hour). */
  issue(node: string, ttlSeconds = 3600): IssuedToken {
    nodeId('cluster.local', node); // validates the node name
    const token = PREFIX + randomBytes(24).toString('base64url');
    const expiresAt = this.now() + ttlSeconds * 1000;
    this.records.set(digest(token), { node, expiresAt, state: 'open' });
    this.save();
    return { token, node, expiresAt: new Date(expiresAt) };
  }

  /** Revokes a token before use. Unknown tokens are refused. */
  revoke(token: string): void {
    const record = this.records.get(digest(token));
    if (record === undefined) throw unknownToken();
    record.state = 'revoked';
    this.save();
  }

  /** Checks a token without using it up; returns its node. */
  check(token: string): string {
    const record = this.records.get(digest(String(token)));
    if (record === undefined) throw unknownToken();
    if (record.state === 'revoked') {
      throw new AmbitError(
        CONTROL_ERRORS.CA_REVOKED_TOKEN,
        `the join token for node "${record.node}" was revoked: ask the operator for a new one`,
      );
    }
    if (record.state === 'used') {
      throw new AmbitError(
        CONTROL_ERRORS.CA_TOKEN_USED,
        `the join token for node "${record.node}" was already exchanged: a token works once; ask for a new one`,
      );
    }
    if (this.now() > record.expiresAt) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_EXPIRED_TOKEN,
        `the join token for node "${record.node}" has expired: ask for a new one`,
      );
    }
    return record.node;
  }

  /** Checks a token and marks it used in one step, so two concurrent joins cannot both spend it. */
  redeem(token: string): string {
    const node = this.check(token);
    this.records.get(digest(token))!.state = 'used';
    this.save();
    return node;
  }

  /** Gives a redeemed token back when the join failed after redeeming (e.g. its CSR was refused). */
  release(token: string): void {
    const record = this.records.get(digest(token));
    if (record !== undefined && record.state === 'used') {
      record.state = 'open';
      this.save();
    }
  }
}

function unknownToken(): AmbitError {
  return new AmbitError(
    CONTROL_ERRORS.CA_UNKNOWN_TOKEN,
    'the join token is not one this control plane issued: check it was copied whole',
  );
}
