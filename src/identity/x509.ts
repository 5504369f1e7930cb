// The one place that loads @peculiar/x509: it needs reflect-metadata first and WebCrypto as its provider.
// Everything in Ambit that builds or parses X.509 structures goes through this module.

import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle;
