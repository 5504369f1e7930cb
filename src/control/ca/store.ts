// CA files on disk: a directory with cert.pem, key.pem (mode 0600) and optionally chain.pem, or the names
// Istio's plug-in CA uses (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem), so existing PKI drops in.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AmbitError } from '../../errors/index.ts';
import { pemText } from '../../identity/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { type CaMaterial, createRootCa } from './root.ts';

const AMBIT_NAMES = { cert: 'cert.pem', key: 'key.pem', chain: 'chain.pem' } as const;
const ISTIO_NAMES = {
  cert: 'ca-cert.pem',
  key: 'ca-key.pem',
  chain: 'cert-chain.pem',
  root: 'root-cert.pem',
} as const;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new AmbitError(
      CONTROL_ERRORS.CA_FILE_UNREADABLE,
      `cannot read the ${what} at ${path}: ${(err as Error).message}`,
      {
        cause: err,
        detail: { path },
      },
    );
  }
}

/** Reads a CA directory in Ambit's layout or Istio's plug-in CA layout. */
export async function readCaDir(dir: string): Promise<CaMaterial> {
  if (await exists(join(dir, ISTIO_NAMES.cert))) {
    const chain = (await exists(join(dir, ISTIO_NAMES.chain)))
      ? await readText(join(dir, ISTIO_NAMES.chain), 'CA chain')
      : '';
    const root = (await exists(join(dir, ISTIO_NAMES.root)))
      ? await readText(join(dir, ISTIO_NAMES.root), 'root certificate')
      : '';
    const certPem = await readText(join(dir, ISTIO_NAMES.cert), 'CA certificate');
    // Istio's cert-chain.pem may or may not end with the root; append root-cert.pem when it is missing.
    const chainPem = chain.includes(root.trim()) ? chain : pemText(chain) + root;
    return {
      certPem,
      keyPem: await readText(join(dir, ISTIO_NAMES.key), 'CA key'),
      chainPem: chainPem.trim() === '' ? undefined : chainPem,
    };
  }
  const certPath = join(dir, AMBIT_NAMES.cert);
  if (!(await exists(certPath))) {
    throw new AmbitError(
      CONTROL_ERRORS.CA_FILE_UNREADABLE,
      `no CA in ${dir}: expected cert.pem and key.pem (from \`ambit ca create-root\`) or Istio's ca-cert.pem and ca-key.pem`,
      { detail: { dir } },
    );
  }
  const chainPath = join(dir, AMBIT_NAMES.chain);
  return {
    certPem: await readText(certPath, 'CA certificate'),
    keyPem: await readText(join(dir, AMBIT_NAMES.key), 'CA key'),
    chainPem: (await exists(chainPath)) ? await readText(chainPath, 'CA chain') : undefined,
  };
}

/** Writes a file atomically (temporary name, then rename) with the given mode. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, mode);
  await rename(tmp, path);
}

/**
 * Writes named PEM files into `dir` (created 0700 if missing). Refuses, writing nothing, when any of them
 * already exists: a CA key is never overwritten by accident. Keys get mode 0600, certificates 0644.
 */
export async function writePemFiles(
  dir: string,
  files: Record<string, { text: string; secret?: boolean }>,
): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const present: string[] = [];
  for (const name of Object.keys(files)) if (await exists(join(dir, name))) present.push(name);
  if (present.length > 0) {
    throw new AmbitError(
      CONTROL_ERRORS.CA_FILES_EXIST,
      `${dir} already holds ${present.join(', ')}: choose an empty directory or remove them first`,
      { detail: { dir, present } },
    );
  }
  const written: string[] = [];
  try {
    for (const [name, file] of Object.entries(files)) {
      await writeAtomic(join(dir, name), file.text, file.secret ? 0o600 : 0o644);
      written.push(name);
    }
  } catch (err) {
    for (const name of written) await rm(join(dir, name), { force: true });
    throw new AmbitError(
      CONTROL_ERRORS.CA_FILE_UNWRITABLE,
      `cannot write into ${dir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return Object.keys(files).map((n) => join(dir, n));
}

/** Writes a CA in Ambit's layout: cert.pem, key.pem (0600) and chain.pem when it is not a root. */
export async function writeCaDir(dir: string, material: CaMaterial): Promise<string[]> {
  const files: Record<string, { text: string; secret?: boolean }> = {
    [AMBIT_NAMES.cert]: { text: material.certPem },
    [AMBIT_NAMES.key]: { text: material.keyPem, secret: true },
  };
  if (material.chainPem !== undefined && material.chainPem.trim() !== '')
    files[AMBIT_NAMES.chain] = { text: material.chainPem };
  return writePemFiles(dir, files);
}

/**
 * The control plane's first-start behaviour: use the CA in `dir` when there is one (generated earlier or put
 * there by the operator as a plug-in CA), else generate a self-signed root and persist it.
 */
export async function loadOrCreateCa(
  dir: string,
  trustDomain: string,
): Promise<{ material: CaMaterial; created: boolean }> {
  if ((await exists(join(dir, AMBIT_NAMES.cert))) || (await exists(join(dir, ISTIO_NAMES.cert)))) {
    return { material: await readCaDir(dir), created: false };
  }
  const material = await createRootCa({ trustDomain });
  await writeCaDir(dir, material);
  return { material, created: true };
}
