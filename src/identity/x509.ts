// The one place that loads @peculiar/x509: it needs reflect-metadata first and WebCrypto as its provider.
// X.509 work goes through it, except the CA's signing hot path (src/control/ca/der.ts), which uses the ASN.1
// layer under it (asn1js, @peculiar/asn1-*) directly; those need neither reflect-metadata nor WebCrypto.

import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle;
