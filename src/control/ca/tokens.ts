// Join tokens: issued by the control plane for a named node, exchanged once for a node credential.
// Only a SHA-256 of each token is kept, so a leaked token list cannot be replayed. The list is a document
// in the store, shared by every replica: a token issued on one is redeemed on any, and only once.

import { createHash, randomBytes } from 'node:crypto';
import { AmbitError } from '../../errors/index.ts';
import { nodeId } from '../../identity/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { SharedDocument } from '../shared-document.ts';
import type { Store } from '../store/index.ts';

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

/** Records by the token's digest. */
type Records = Record<string, TokenRecord>;

const PREFIX = 'ambit-join-';
const DOCUMENT = 'join-tokens';

/** What is kept of a secret token: its SHA-256, hex. Also used for the admin API's tokens. */
export function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class JoinTokens {
  private readonly doc: SharedDocument<Records>;
  private readonly now: () => number;

  constructor(options: { store: Store; now?: () => number }) {
    this.doc = new SharedDocument(options.store, DOCUMENT);
    this.now = options.now ?? Date.now;
  }

  /** Takes over the token file an older control plane kept (`join-tokens.json`), once. */
  takeOver(file: string): Promise<void> {
    const unreadable = (cause: unknown) =>
      new AmbitError(
        CONTROL_ERRORS.CA_TOKENS_UNREADABLE,
        `the join token file ${file} is unreadable; move it aside to start without pending tokens`,
        { cause },
      );
    return this.doc.takeOver(file, (json) => this.live(validRecords(json)), unreadable);
  }

  /** A new single-use token for `node`, valid for `ttlSeconds` (default one hour). */
  async issue(node: string, ttlSeconds = 3600): Promise<IssuedToken> {
    nodeId('cluster.local', node); // validates the node name
    const token = PREFIX + randomBytes(24).toString('base64url');
    const expiresAt = this.now() + ttlSeconds * 1000;
    await this.update(() => ({ [digest(token)]: { node, expiresAt, state: 'open' } }));
    return { token, node, expiresAt: new Date(expiresAt) };
  }

  /** Revokes a token before use. Unknown tokens are refused. */
  async revoke(token: string): Promise<void> {
    await this.update((records) => {
      const record = records[digest(token)];
      if (record === undefined) throw unknownToken();
      return { [digest(token)]: { ...record, state: 'revoked' } };
    });
  }

  /** Checks a token without using it up; returns its node. */
  check(token: string): string {
    return this.checked(this.doc.read() ?? {}, token);
  }

  /**
   * Checks a token and marks it used in one store commit, so two concurrent joins (on any replicas)
   * cannot both spend it.
   */
  async redeem(token: string): Promise<string> {
    let node = '';
    await this.update((records) => {
      node = this.checked(records, token);
      return { [digest(token)]: { ...records[digest(token)]!, state: 'used' } };
    });
    return node;
  }

  /** Gives a redeemed token back when the join failed after redeeming (e.g. its CSR was refused). */
  async release(token: string): Promise<void> {
    await this.update((records) => {
      const record = records[digest(token)];
      return record?.state === 'used' ? { [digest(token)]: { ...record, state: 'open' } } : undefined;
    });
  }

  /** Commits the records `change` returns over the current ones (none: no commit); expired ones leave. */
  private update(change: (records: Records) => Records | undefined): Promise<void> {
    return this.doc.update((current) => {
      const changed = change(current ?? {});
      return changed && this.live({ ...current, ...changed });
    });
  }

  private live(records: Records): Records {
    const now = this.now();
    return Object.fromEntries(Object.entries(records).filter(([, r]) => r.expiresAt > now));
  }

  private checked(records: Records, token: string): string {
    const record = records[digest(String(token))];
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
}

/** The well-formed records of an older control plane's token file (others are dropped). */
function validRecords(json: unknown): Records {
  const out: Records = {};
  for (const [key, r] of Object.entries((json ?? {}) as Record<string, Partial<TokenRecord>>)) {
    const ok =
      /^[0-9a-f]{64}$/.test(key) &&
      typeof r?.node === 'string' &&
      typeof r.expiresAt === 'number' &&
      (r.state === 'open' || r.state === 'used' || r.state === 'revoked');
    if (ok) out[key] = r as TokenRecord;
  }
  return out;
}

function unknownToken(): AmbitError {
  return new AmbitError(
    CONTROL_ERRORS.CA_UNKNOWN_TOKEN,
    'the join token is not one this control plane issued: check it was copied whole',
  );
}
