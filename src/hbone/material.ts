// TLS material for one identity (chain, key, trust bundle) and the secure contexts built from it: built once
// per identity and certificate, never per connection, and replaced when a renewal brings a new certificate.

import type { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { AmbitError } from '../errors/index.ts';
import { type SpiffeId, TrustBundle } from '../identity/index.ts';
import { HBONE_ERRORS } from './errors.ts';
import { intOption } from './settings.ts';

/** What one end presents and trusts: a workload identity's chain (leaf first) and key, and the roots. */
export interface TlsMaterial {
  identity: SpiffeId;
  certChainPem: string;
  keyPem: string;
  trustBundlePem: string;
}

/** The material of a workload certificate (as the certificate manager holds it) and the roots to trust. */
export function materialOf(
  cert: { id: SpiffeId; chain: readonly string[]; privateKeyPem: string },
  trustBundlePem: string,
): TlsMaterial {
  return { identity: cert.id, certChainPem: cert.chain.join(''), keyPem: cert.privateKeyPem, trustBundlePem };
}

/** HBONE's TLS: 1.3 only (so no renegotiation, no RSA key exchange), ALPN h2. */
export const TLS_MIN_VERSION = 'TLSv1.3';
export const ALPN = ['h2'];

interface Built {
  certChainPem: string;
  keyPem: string;
  trustBundlePem: string;
  context: tls.SecureContext;
  bundle: TrustBundle;
}

/** How many identities' contexts a cache keeps by default: more than a node's workloads, bounded all the same. */
export const DEFAULT_MAX_CONTEXTS = 256;

/**
 * Secure contexts and parsed trust bundles, one per identity, rebuilt only when the material changes. It
 * never only grows: at most `max` identities are kept (the least recently used goes first; a miss costs one
 * rebuild), and `retain` forgets every identity its owner no longer holds a certificate for.
 */
export class ContextCache {
  private readonly byIdentity = new Map<SpiffeId, Built>();
  private readonly max: number;
  /** The identity used last, so a run of hits on one identity does not reorder the map each time. */
  private lastKey: SpiffeId | undefined;

  constructor(max = DEFAULT_MAX_CONTEXTS) {
    this.max = intOption('ContextCache', 'maxContexts', max, 1, 2 ** 31 - 1);
  }

  get size(): number {
    return this.byIdentity.size;
  }

  get(material: TlsMaterial): { context: tls.SecureContext; bundle: TrustBundle } {
    checkMaterial(material);
    const hit = this.byIdentity.get(material.identity);
    if (
      hit !== undefined &&
      hit.certChainPem === material.certChainPem &&
      hit.keyPem === material.keyPem &&
      hit.trustBundlePem === material.trustBundlePem
    ) {
      if (this.lastKey !== material.identity) this.touch(material.identity, hit);
      return hit;
    }
    let bundle: TrustBundle;
    let context: tls.SecureContext;
    try {
      bundle =
        hit?.trustBundlePem === material.trustBundlePem
          ? hit.bundle
          : new TrustBundle(material.trustBundlePem);
      context = tls.createSecureContext({
        cert: material.certChainPem,
        key: material.keyPem,
        ca: material.trustBundlePem,
        minVersion: TLS_MIN_VERSION,
      });
    } catch (err) {
      throw new AmbitError(
        HBONE_ERRORS.BAD_OPTIONS,
        `the TLS material for ${material.identity} is unusable (certificate, key and bundle must be PEM and match): ${(err as Error).message}`,
        { cause: err, detail: { identity: material.identity } },
      );
    }
    const built = {
      certChainPem: material.certChainPem,
      keyPem: material.keyPem,
      trustBundlePem: material.trustBundlePem,
      context,
      bundle,
    };
    this.touch(material.identity, built);
    if (this.byIdentity.size > this.max) {
      const oldest = this.byIdentity.keys().next().value;
      if (oldest !== undefined) this.byIdentity.delete(oldest);
    }
    return built;
  }

  forget(identity: SpiffeId): void {
    this.byIdentity.delete(identity);
  }

  /** Forgets every identity `holds` says is gone (call it when the certificates held change). */
  retain(holds: (identity: SpiffeId) => boolean): void {
    for (const id of [...this.byIdentity.keys()]) if (!holds(id)) this.byIdentity.delete(id);
  }

  /** Most recently used last (Map keeps insertion order). */
  private touch(identity: SpiffeId, built: Built): void {
    this.byIdentity.delete(identity);
    this.byIdentity.set(identity, built);
    this.lastKey = identity;
  }
}

function checkMaterial(material: TlsMaterial): void {
  for (const field of ['identity', 'certChainPem', 'keyPem', 'trustBundlePem'] as const) {
    if (typeof material?.[field] !== 'string' || material[field] === '') {
      throw new AmbitError(
        HBONE_ERRORS.BAD_OPTIONS,
        `TLS material is missing "${field}": give identity, certChainPem, keyPem and trustBundlePem`,
        { detail: { field } },
      );
    }
  }
}

/** The peer's chain as the TLS layer received it, leaf first (the root, if sent or found, last). */
export function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  const leaf = socket.getPeerX509Certificate();
  if (leaf === undefined) return [];
  const chain = [leaf];
  const seen = new Set([leaf.fingerprint256]);
  let cert: X509Certificate | undefined = leaf.issuerCertificate;
  while (cert !== undefined && !seen.has(cert.fingerprint256)) {
    chain.push(cert);
    seen.add(cert.fingerprint256);
    cert = cert.issuerCertificate;
  }
  return chain;
}
