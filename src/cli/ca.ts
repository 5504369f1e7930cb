import { X509Certificate } from 'node:crypto';
import { Command } from 'commander';
import {
  type CaMaterial,
  CertificateAuthority,
  createIntermediateCa,
  createRootCa,
  readCaDir,
  writeCaDir,
  writePemFiles,
} from '../control/index.ts';
import { AmbitError } from '../errors/index.ts';
import {
  createCsr,
  DEFAULT_TRUST_DOMAIN,
  generateKeyPair,
  parseSpiffeId,
  parseWorkloadId,
  validateTrustDomain,
} from '../identity/index.ts';
import { CLI_ERRORS } from './errors.ts';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90s", "30m", "1h", "365d" (or a sum such as "1h30m") to seconds. */
export function parseDuration(text: string, flag: string): number {
  const parts = [...String(text).matchAll(/(\d+)([smhd])/g)];
  const total = parts.reduce((sum, m) => sum + Number(m[1]) * UNITS[m[2]!]!, 0);
  if (parts.length === 0 || parts.map((m) => m[0]).join('') !== text || total <= 0) {
    throw new AmbitError(
      CLI_ERRORS.BAD_DURATION,
      `${flag} ${JSON.stringify(text)} is not a duration: write it like 90s, 30m, 1h or 365d`,
    );
  }
  return total;
}

function say(lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function createRoot(opts: { out: string; trustDomain: string; ttl: string }): Promise<void> {
  const trustDomain = validateTrustDomain(opts.trustDomain);
  const ttlSeconds = parseDuration(opts.ttl, '--ttl');
  const material = await createRootCa({ trustDomain, ttlSeconds });
  const files = await writeCaDir(opts.out, material);
  say([`created root CA for trust domain ${trustDomain}`, ...files.map((f) => `  wrote ${f}`)]);
}

async function createIntermediate(opts: {
  root: string;
  out: string;
  trustDomain?: string;
  ttl: string;
}): Promise<void> {
  const parent = await readCaDir(opts.root);
  const ttlSeconds = parseDuration(opts.ttl, '--ttl');
  // Check the parent's files before using them (key matches, chain to a root), naming any problem.
  const checked = await CertificateAuthority.create({
    material: parent,
    policy: { trustDomain: opts.trustDomain ?? DEFAULT_TRUST_DOMAIN },
  });
  const trustDomain = validateTrustDomain(opts.trustDomain ?? DEFAULT_TRUST_DOMAIN);
  const material = await createIntermediateCa(parent, { trustDomain, ttlSeconds });
  const files = await writeCaDir(opts.out, material);
  say([
    `created intermediate CA under "${checked.signingCertificate.subject.replace(/\n/g, ', ')}"`,
    ...files.map((f) => `  wrote ${f}`),
  ]);
}

/** The trust domain a CA was made for: `--trust-domain`, else the O= its certificate records. */
function caTrustDomain(material: CaMaterial, flag: string | undefined): string {
  if (flag) return validateTrustDomain(flag);
  const org = /^O=(.+)$/m.exec(new X509Certificate(material.certPem).subject)?.[1];
  return validateTrustDomain(org ?? DEFAULT_TRUST_DOMAIN);
}

async function issue(opts: {
  ca: string;
  id: string;
  ttl: string;
  out: string;
  trustDomain?: string;
}): Promise<void> {
  const parsed = parseSpiffeId(opts.id);
  if (parsed.path.startsWith('/ns/') && parsed.node === undefined) parseWorkloadId(opts.id);
  const ttlSeconds = parseDuration(opts.ttl, '--ttl');
  const material: CaMaterial = await readCaDir(opts.ca);
  // The CA signs only inside its own trust domain, as in the mesh: a foreign ID is refused.
  const ca = await CertificateAuthority.create({
    material,
    policy: {
      trustDomain: caTrustDomain(material, opts.trustDomain),
      minTtlSeconds: 1,
      maxTtlSeconds: Math.max(ttlSeconds, 90 * 86400),
    },
  });
  const pair = await generateKeyPair();
  const issued = await ca.sign(await createCsr(parsed.id, pair.keys), { ttlSeconds });
  const files = await writePemFiles(opts.out, {
    'cert.pem': { text: issued.certPem },
    'key.pem': { text: pair.privateKeyPem, secret: true },
    'chain.pem': { text: issued.chain.join('') },
  });
  say([
    `issued ${issued.id}`,
    `  serial ${issued.serial}, valid ${issued.notBefore.toISOString()} to ${issued.notAfter.toISOString()}`,
    ...files.map((f) => `  wrote ${f}`),
    `  check it: openssl verify -CAfile <root cert.pem> -untrusted ${opts.out}/chain.pem ${opts.out}/cert.pem`,
  ]);
}

export function caCommand(): Command {
  const ca = new Command('ca').description(
    'certificate authority files: roots, intermediates, and certificates for debugging',
  );
  ca.command('create-root')
    .description('generate a self-signed root CA (writes cert.pem and key.pem)')
    .requiredOption('--out <dir>', 'directory to write into (must not already hold a CA)')
    .option('--trust-domain <name>', 'trust domain recorded in the root', DEFAULT_TRUST_DOMAIN)
    .option('--ttl <duration>', 'lifetime of the root', '3650d')
    .action(createRoot);
  ca.command('create-intermediate')
    .description('generate an intermediate CA signed by a root (writes cert.pem, key.pem, chain.pem)')
    .requiredOption('--root <dir>', 'directory holding the parent CA (cert.pem, key.pem)')
    .requiredOption('--out <dir>', 'directory to write into')
    .option('--trust-domain <name>', 'trust domain recorded in the intermediate', DEFAULT_TRUST_DOMAIN)
    .option('--ttl <duration>', 'lifetime of the intermediate (never past its parent)', '365d')
    .action(createIntermediate);
  ca.command('issue')
    .description(
      'issue a certificate for a SPIFFE ID (writes cert.pem, key.pem, chain.pem), for debugging and non-mesh clients',
    )
    .requiredOption('--ca <dir>', 'directory holding the signing CA')
    .requiredOption('--id <spiffe-id>', 'identity, e.g. spiffe://cluster.local/ns/default/sa/web')
    .option('--ttl <duration>', 'lifetime of the certificate', '1h')
    .option(
      '--trust-domain <name>',
      "the CA's trust domain (default: the O= of the CA certificate, else cluster.local)",
    )
    .requiredOption('--out <dir>', 'directory to write into')
    .action(issue);
  return ca;
}
