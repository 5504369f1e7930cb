// Reading certificates: PEM bundles split into certificates, and the facts Ambit needs from a certificate
// (SPIFFE ID, serial, validity) read through Node's X509Certificate and @peculiar/x509 — never by hand.

import { X509Certificate } from 'node:crypto';
import { AmbitError } from '../errors/index.ts';
import { IDENTITY_ERRORS } from './errors.ts';
import { x509 } from './x509.ts';

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** PEM text that always ends with a newline, so PEM blocks concatenate into a bundle OpenSSL can read. */
export function pemText(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** Every certificate in a PEM text, in order. */
export function splitPem(text: string): string[] {
  return (text.match(PEM_CERT_RE) ?? []).map((pem) => `${pem}\n`);
}

/** Parses one PEM or DER certificate. Throws AMBIT_ERR_IDENTITY_BAD_CERTIFICATE. */
export function parseCertificate(input: string | Buffer | X509Certificate): X509Certificate {
  if (input instanceof X509Certificate) return input;
  try {
    return new X509Certificate(input);
  } catch (err) {
    throw new AmbitError(
      IDENTITY_ERRORS.BAD_CERTIFICATE,
      'cannot parse the certificate: expected PEM or DER X.509',
      {
        cause: err,
      },
    );
  }
}

/** Parses every certificate of a chain given as PEM text or a list. */
export function parseChain(
  input: string | ReadonlyArray<string | Buffer | X509Certificate>,
): X509Certificate[] {
  const items = typeof input === 'string' ? splitPem(input) : input;
  return items.map((item) => parseCertificate(item));
}

export interface SubjectAltNames {
  uris: string[];
  dns: string[];
  ips: string[];
  other: number;
}

/** The subject alternative names of a certificate, decoded from the extension's DER. */
export function subjectAltNames(cert: X509Certificate): SubjectAltNames {
  const parsed = new x509.X509Certificate(cert.raw);
  return sanOf(parsed.extensions);
}

const SAN_OID = '2.5.29.17';

/** Collects the names of every subjectAltName extension among `extensions` (a certificate's or a CSR's). */
export function sanOf(extensions: ReadonlyArray<InstanceType<typeof x509.Extension>>): SubjectAltNames {
  const out: SubjectAltNames = { uris: [], dns: [], ips: [], other: 0 };
  for (const raw of extensions) {
    if (raw.type !== SAN_OID) continue;
    const ext =
      raw instanceof x509.SubjectAlternativeNameExtension
        ? raw
        : new x509.SubjectAlternativeNameExtension(raw.rawData);
    collect(ext, out);
  }
  return out;
}

function collect(ext: InstanceType<typeof x509.SubjectAlternativeNameExtension>, out: SubjectAltNames): void {
  for (const name of ext.names.items) {
    if (name.type === 'url') out.uris.push(name.value);
    else if (name.type === 'dns') out.dns.push(name.value);
    else if (name.type === 'ip') out.ips.push(name.value);
    else out.other++;
  }
}

/** Facts about one certificate, as the admin endpoints and the CLI show them. */
export interface CertificateSummary {
  serial: string;
  subject: string;
  issuer: string;
  uris: string[];
  notBefore: string;
  notAfter: string;
  isCa: boolean;
}

export function summarize(cert: X509Certificate): CertificateSummary {
  return {
    serial: cert.serialNumber.toLowerCase(),
    subject: cert.subject,
    issuer: cert.issuer,
    uris: subjectAltNames(cert).uris,
    notBefore: cert.validFromDate.toISOString(),
    notAfter: cert.validToDate.toISOString(),
    isCa: cert.ca,
  };
}
