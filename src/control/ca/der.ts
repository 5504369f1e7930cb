// DER on the CA's hot path, through asn1js (the codec under @peculiar/asn1-schema): decode a structure once and
// read its fields by position with type checks, and place elements that are already encoded without re-encoding.

import * as asn1js from 'asn1js';

/** Thrown for bytes that do not have the expected shape; callers turn it into their own refusal. */
export class DerShapeError extends Error {
  override name = 'DerShapeError';
}

/**
 * Decodes one DER element. Throws DerShapeError when the bytes are not BER at all. The contents of OCTET and BIT
 * STRINGs are left alone (asn1js would otherwise try to decode each one as nested ASN.1); decode them by name.
 */
export function decode(der: ArrayBuffer | Uint8Array): asn1js.BaseBlock {
  const { offset, result } = asn1js.fromBER(der, { parseEmbedded: false });
  if (offset === -1 || result.error !== '') {
    throw new DerShapeError(`not DER: ${result.error || 'cannot decode'}`);
  }
  return result;
}

/** The children of a SEQUENCE (or SET), checking the type and the number of children. */
export function childrenOf(
  block: asn1js.BaseBlock | undefined,
  what: string,
  type: typeof asn1js.Sequence | typeof asn1js.Set = asn1js.Sequence,
  count?: { min: number; max: number },
): asn1js.BaseBlock[] {
  if (!(block instanceof type)) throw new DerShapeError(`${what} is not a ${type.NAME}`);
  const children = block.valueBlock.value;
  if (count !== undefined && (children.length < count.min || children.length > count.max)) {
    throw new DerShapeError(`${what} has ${children.length} elements, expected ${count.min}..${count.max}`);
  }
  return children;
}

/** The dotted form of an OBJECT IDENTIFIER. */
export function oidOf(block: asn1js.BaseBlock | undefined, what: string): string {
  if (!(block instanceof asn1js.ObjectIdentifier)) throw new DerShapeError(`${what} is not an OID`);
  return block.getValue();
}

/** The encoded bytes a decoded element came from: tag, length and content, exactly as received. */
export function rawOf(block: asn1js.BaseBlock): Uint8Array {
  return block.valueBeforeDecodeView;
}

/**
 * An element whose DER is already known, placed into a structure as is: asn1js writes its tag, its length and
 * the content octets we give it, so per-CA constants and the requester's key are never re-encoded.
 */
export class PreEncoded extends asn1js.Primitive {
  constructor(tag: { tagClass: number; tagNumber: number; isConstructed: boolean }, content: Uint8Array) {
    super({ idBlock: { tagClass: tag.tagClass, tagNumber: tag.tagNumber }, valueHex: content });
    // Primitive clears the constructed bit; a SEQUENCE or a [n] EXPLICIT keeps it.
    this.idBlock.isConstructed = tag.isConstructed;
  }

  /** An element decoded by asn1js (or just encoded by it): its tag, and the content octets after the header. */
  static of(block: asn1js.BaseBlock, der: Uint8Array = rawOf(block)): PreEncoded {
    const length = block.lenBlock.length;
    if (block.lenBlock.isIndefiniteForm || length > der.byteLength) {
      throw new DerShapeError('expected an element with a definite length');
    }
    return new PreEncoded(block.idBlock, der.subarray(der.byteLength - length));
  }

  /** One complete DER element, decoded once to find its tag and content. */
  static from(der: ArrayBuffer | Uint8Array): PreEncoded {
    const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
    const block = decode(bytes);
    if (rawOf(block).byteLength !== bytes.byteLength) {
      throw new DerShapeError('expected exactly one element, found trailing bytes');
    }
    return PreEncoded.of(block, bytes);
  }
}

/** PEM armour for DER, as OpenSSL and @peculiar/x509 write it: 64 base64 characters a line, ending in a newline. */
export function pemOf(der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
