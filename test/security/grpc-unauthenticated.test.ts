// Issue 8, item 4: the control plane's gRPC port (15010) answers callers without a client certificate at
// once (UNAUTHENTICATED) instead of holding their streams open, ends an authenticated stream whose first
// request never comes, caps the streams one HTTP/2 connection may open, and drops a TCP connection that
// never finishes its TLS handshake.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type ControlOptions, type ControlPlane, startControlPlane } from '../../src/control/index.ts';
import {
  CONTROL_CHANNEL_OPTIONS,
  ConfigStreamClient,
  certificateServiceClass,
  controlPlaneCredentials,
  ERROR_CODE_KEY,
} from '../../src/xds/index.ts';
import { joinNode } from '../helpers/mesh.ts';

/** A test that would hang on the old code fails after this long instead; nothing asserts how fast it is. */
const WATCHDOG_MS = 10_000;

async function control(t: TestContext, grpcOptions: ControlOptions['grpc'] = {}): Promise<ControlPlane> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cp = await startControlPlane({
    dataDir: dir,
    adminListen: '127.0.0.1:0',
    adminSocket: '',
    grpcListen: '127.0.0.1:0',
    grpc: grpcOptions,
  });
  t.after(() => cp.close());
  return cp;
}

function watchdog<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: nothing happened within ${WATCHDOG_MS} ms`)),
      WATCHDOG_MS,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Opens a Delta stream, sends nothing, and resolves with the status the server ends it with. */
function deltaStatus(
  t: TestContext,
  address: string,
  creds: grpc.ChannelCredentials,
): Promise<grpc.StatusObject> {
  const client = new ConfigStreamClient(address, creds, CONTROL_CHANNEL_OPTIONS);
  t.after(() => client.close());
  const call = (client as unknown as { delta(): grpc.ClientDuplexStream<unknown, unknown> }).delta();
  t.after(() => call.cancel());
  call.on('error', () => {}); // the status below is what is asserted
  call.on('data', () => {});
  return watchdog('the config stream', new Promise((resolve) => call.once('status', resolve)));
}

/** TLS to the control plane without a client certificate. */
function anonymous(cp: ControlPlane): grpc.ChannelCredentials {
  return controlPlaneCredentials(cp.ca.trustDomain, cp.ca.bundle.toPem());
}

describe('gRPC port: unauthenticated and idle callers', () => {
  test('a config stream without a client certificate is answered UNAUTHENTICATED and ended', async (t) => {
    const cp = await control(t);
    const status = await deltaStatus(t, cp.grpcAddress, anonymous(cp));
    assert.equal(status.code, grpc.status.UNAUTHENTICATED, status.details);
    assert.equal(status.metadata.get(ERROR_CODE_KEY)[0], 'AMBIT_ERR_CA_UNAUTHENTICATED');
    assert.equal(cp.stream.status().length, 0);
  });

  test('a certificate request without a client certificate is answered UNAUTHENTICATED', async (t) => {
    const cp = await control(t);
    const Client = certificateServiceClass();
    const client = new Client(cp.grpcAddress, anonymous(cp), CONTROL_CHANNEL_OPTIONS);
    t.after(() => client.close());
    const err = await watchdog(
      'the certificate request',
      new Promise<grpc.ServiceError | null>((resolve) =>
        (
          client as unknown as {
            CreateCertificate(req: unknown, cb: (e: grpc.ServiceError | null) => void): void;
          }
        ).CreateCertificate({ csr: 'not a csr' }, resolve),
      ),
    );
    assert.equal(err?.code, grpc.status.UNAUTHENTICATED, err?.details);
    assert.equal(err?.metadata.get(ERROR_CODE_KEY)[0], 'AMBIT_ERR_CA_UNAUTHENTICATED');
  });

  test('an authenticated stream whose first request never comes is ended at the deadline', async (t) => {
    const cp = await control(t, { firstRequestTimeoutMs: 300 });
    const cred = await joinNode(cp, 'node-1');
    const status = await deltaStatus(
      t,
      cp.grpcAddress,
      controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, cred),
    );
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED, status.details);
    assert.equal(status.metadata.get(ERROR_CODE_KEY)[0], 'AMBIT_ERR_XDS_FIRST_REQUEST_TIMEOUT');
  });

  test('each HTTP/2 connection may carry a bounded number of concurrent streams', async (t) => {
    const cp = await control(t, { maxConcurrentStreams: 7 });
    const session = http2.connect(`https://${cp.grpcAddress}`, {
      ca: cp.ca.bundle.toPem(),
      checkServerIdentity: () => undefined,
    });
    t.after(() => session.destroy());
    session.on('error', () => {});
    const settings = await watchdog(
      'the server SETTINGS',
      new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve)),
    );
    assert.equal(settings.maxConcurrentStreams, 7);
  });

  test('the default stream cap is finite', async (t) => {
    const cp = await control(t);
    const session = http2.connect(`https://${cp.grpcAddress}`, {
      ca: cp.ca.bundle.toPem(),
      checkServerIdentity: () => undefined,
    });
    t.after(() => session.destroy());
    session.on('error', () => {});
    const settings = await watchdog(
      'the server SETTINGS',
      new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve)),
    );
    assert.ok((settings.maxConcurrentStreams ?? Infinity) <= 1000, `cap ${settings.maxConcurrentStreams}`);
  });

  test('a TCP connection that never starts TLS is closed after the handshake timeout', async (t) => {
    const cp = await control(t, { handshakeTimeoutMs: 1_000 });
    const [host, port] = [
      cp.grpcAddress.slice(0, cp.grpcAddress.lastIndexOf(':')),
      cp.grpcAddress.split(':').pop(),
    ];
    const socket = net.connect({ host, port: Number(port) });
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    await watchdog(
      'the idle connection',
      new Promise<void>((resolve) => socket.once('close', () => resolve())),
    );
  });
});
