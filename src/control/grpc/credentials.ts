// TLS credentials for grpc-js that can change while the server or channel runs (serving certificate renewal,
// trust bundle rotation), built on grpc-js's certificate-provider hook.

import type { experimental } from '@grpc/grpc-js';

type Provider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdListener = experimental.IdentityCertificateUpdateListener;

export interface TlsMaterial {
  /** PEM roots that peers must chain to. */
  trustBundlePem: string;
  /** PEM certificate chain (leaf first) and key presented to peers. */
  certChainPem: string;
  keyPem: string;
}

/** One provider for both halves (roots and own identity); `update` pushes new material to every listener. */
export class MutableCertificateProvider implements Provider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();

  constructor(material: TlsMaterial) {
    this.material = material;
  }

  update(material: Partial<TlsMaterial>): void {
    this.material = { ...this.material, ...material };
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.idListeners) l(this.idUpdate());
  }

  get current(): TlsMaterial {
    return this.material;
  }

  private caUpdate() {
    return { caCertificate: Buffer.from(this.material.trustBundlePem) };
  }

  private idUpdate() {
    return {
      certificate: Buffer.from(this.material.certChainPem),
      privateKey: Buffer.from(this.material.keyPem),
    };
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Deliver the first update on the next tick: grpc-js registers its own watcher only after this returns,
    // and an update delivered synchronously would reach nobody, leaving the server without a certificate.
    process.nextTick(() => this.caListeners.has(listener) && listener(this.caUpdate()));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdListener): void {
    this.idListeners.add(listener);
    process.nextTick(() => this.idListeners.has(listener) && listener(this.idUpdate()));
  }

  removeIdentityCertificateListener(listener: IdListener): void {
    this.idListeners.delete(listener);
  }
}
