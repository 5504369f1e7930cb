// Certificate serial numbers: 128 random bits (RFC 5280 allows up to 20 octets), positive, never zero, and
// checked against the serials this process has issued so a collision can never reach a certificate.

import { randomBytes } from 'node:crypto';

export class SerialSource {
  private readonly issued = new Set<string>();

  next(): string {
    for (;;) {
      const bytes = randomBytes(16);
      // Clear the top bit so the DER INTEGER is positive; set the next one so it keeps all 16 octets.
      bytes[0] = (bytes[0]! & 0x7f) | 0x40;
      const hex = bytes.toString('hex');
      if (!this.issued.has(hex)) {
        this.issued.add(hex);
        return hex;
      }
    }
  }
}
