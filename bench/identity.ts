// Identity benchmark: CSR validation + signing by the CA (per second, and p99 latency of one signing),
// beside raw ECDSA P-256 signatures with Node's crypto measured in the same process at the same time, and
// beside the crypto floor of one certificate: one ECDSA verify (the CSR's signature) plus one ECDSA sign.
// Run with `node bench/identity.ts` (prints a table) or through `npm run bench` (calls bench()).

import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { CertificateAuthority, createRootCa } from '../src/control/ca/index.ts';
import { createCsr, generateKeyPair, workloadId } from '../src/identity/index.ts';

import type { BenchResult } from './harness.ts';

const RAW_MS = 2000;
const SIGN_MS = 4000;
const CONCURRENCY = 16;

function rawEcdsaPerSecond(ms: number): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.alloc(256, 7);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < 100; i++) sign('sha256', data, privateKey);
    n += 100;
  }
  return n / ((performance.now() - start) / 1000);
}

/** One verify plus one sign per round: the least a CA that checks the CSR's signature can do per certificate. */
function rawVerifySignPerSecond(ms: number): number {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.alloc(256, 7);
  const signature = sign('sha256', data, privateKey);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < 100; i++) {
      if (!verify('sha256', data, publicKey, signature)) throw new Error('raw verify failed');
      sign('sha256', data, privateKey);
    }
    n += 100;
  }
  return n / ((performance.now() - start) / 1000);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function bench(): Promise<BenchResult[]> {
  const trustDomain = 'cluster.local';
  const ca = await CertificateAuthority.create({
    material: await createRootCa({ trustDomain }),
    policy: { trustDomain },
  });
  const csrs = await Promise.all(
    Array.from({ length: 32 }, async (_, i) =>
      createCsr(workloadId(trustDomain, 'bench', `sa-${i}`), (await generateKeyPair()).keys),
    ),
  );
  // Warm up the JIT.
  for (let i = 0; i < 50; i++) await ca.sign(csrs[i % csrs.length]!);

  const raw = rawEcdsaPerSecond(RAW_MS);
  const floor = rawVerifySignPerSecond(RAW_MS);

  // One signing at a time: latency per request.
  const latencies: number[] = [];
  let start = performance.now();
  const cpuStart = process.cpuUsage();
  while (performance.now() - start < SIGN_MS / 2) {
    const t0 = performance.now();
    await ca.sign(csrs[latencies.length % csrs.length]!);
    latencies.push(performance.now() - t0);
  }
  const sequential = latencies.length / ((performance.now() - start) / 1000);
  // CPU time, unlike wall time, does not grow when other processes share the machine.
  const cpu = process.cpuUsage(cpuStart);
  const cpuPerCert = (cpu.user + cpu.system) / latencies.length;
  latencies.sort((a, b) => a - b);

  // Many requests in flight, as when a node restarts with many service accounts.
  let done = 0;
  start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() - start < SIGN_MS / 2) {
        await ca.sign(csrs[done % csrs.length]!);
        done++;
      }
    }),
  );
  const concurrent = done / ((performance.now() - start) / 1000);
  const ratio = (x: number) =>
    `${(raw / x).toFixed(1)}x slower than raw ECDSA P-256 signing, ${(floor / x).toFixed(1)}x the verify+sign floor`;

  return [
    { name: 'raw ECDSA P-256 sign (node:crypto, 1 core)', value: Math.round(raw), unit: 'sign/s' },
    {
      name: 'raw ECDSA P-256 verify + sign (the crypto in one certificate)',
      value: Math.round(floor),
      unit: 'pair/s',
    },
    {
      name: 'CA validate+sign CSR, sequential',
      value: Math.round(sequential),
      unit: 'cert/s',
      baseline: Math.round(raw),
      note: ratio(sequential),
    },
    {
      name: `CA validate+sign CSR, ${CONCURRENCY} in flight`,
      value: Math.round(concurrent),
      unit: 'cert/s',
      baseline: Math.round(raw),
      note: ratio(concurrent),
    },
    {
      name: 'CA validate+sign CSR, CPU time per certificate',
      value: Math.round(cpuPerCert),
      unit: 'us',
      note: 'all threads of the process, including the garbage collector',
    },
    {
      name: 'CA validate+sign CSR latency p50',
      value: Number(percentile(latencies, 50).toFixed(3)),
      unit: 'ms',
    },
    {
      name: 'CA validate+sign CSR latency p99',
      value: Number(percentile(latencies, 99).toFixed(3)),
      unit: 'ms',
    },
  ];
}

if (import.meta.main) {
  const rows = await bench();
  const width = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(width)}  ${String(r.value).padStart(10)} ${r.unit.padEnd(7)} ${r.note ?? ''}`,
    );
  }
}
