// Certificate serial numbers: 128 random bits (RFC 5280 allows up to 20 octets), positive, never zero, and
// checked against the serials this process has issued so a collision can never reach a certificate.

import { randomBytes } from 'node:crypto';

/** Random bytes are drawn from the OS in blocks: one system call per 256 serials rather than one each. */
const POOL_BYTES = 4096;

export class SerialSource {
  private readonly issued = new Set<string>();
  private pool = Buffer.alloc(0);
  private used = 0;

  private random16(): Buffer {
    if (this.used + 16 > this.pool.length) {
      this.pool = randomBytes(POOL_BYTES);
      this.used = 0;
    }
    this.used += 16;
    return this.pool.subarray(this.used - 16, this.used);
  }

  next(): string {
    for (;;) {
      const bytes = this.random16();
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
