// `ambit sample tcp-echo` and `ambit sample sink`: raw TCP workloads. The echo returns every byte
// and ends after the client half-closes; the sink swallows bytes and answers with their count.

import { createServer, type Socket } from 'node:net';
import { logger } from '../log/index.ts';
import {
  ConnectionTracker,
  DEFAULT_DRAIN_MS,
  DEFAULT_HOST,
  type ListenOptions,
  listen,
  once,
  type SampleServer,
} from './lifecycle.ts';
import { type PodOverrides, resolvePod } from './pod.ts';

export interface TcpSampleOptions extends ListenOptions {
  pod?: PodOverrides;
}

const echoLog = logger('sample-tcp-echo');
const sinkLog = logger('sample-sink');

/** Starts the TCP echo: bytes come back as they arrive; the client's FIN ends our side too. */
export async function startTcpEcho(options: TcpSampleOptions): Promise<SampleServer> {
  return startTcp(options, 'tcp-echo', (socket) => {
    // pipe() ends the writable side once the readable side has ended and everything is flushed.
    socket.pipe(socket);
    socket.on('error', (err) => echoLog.debug({ err, peer: peerOf(socket) }, 'tcp-echo connection error'));
  });
}

/**
 * Starts the sink: it reads and discards everything; when the client half-closes it writes the
 * decimal byte count and a newline, then ends.
 */
export async function startSink(options: TcpSampleOptions): Promise<SampleServer> {
  return startTcp(options, 'sink', (socket) => {
    let bytes = 0;
    const peer = peerOf(socket);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('end', () => socket.end(`${bytes}\n`));
    socket.on('error', (err) => sinkLog.debug({ err, peer }, 'sink connection error'));
    socket.on('close', (hadError) =>
      sinkLog.info({ peer, bytes, complete: !hadError }, 'sink connection closed'),
    );
  });
}

async function startTcp(
  options: TcpSampleOptions,
  name: 'tcp-echo' | 'sink',
  onConnection: (socket: Socket) => void,
): Promise<SampleServer> {
  const pod = resolvePod(options.pod);
  const server = createServer({ allowHalfOpen: true }, onConnection);
  const tracker = new ConnectionTracker(server);
  const address = await listen(server, options.host ?? DEFAULT_HOST, options.port);
  (name === 'sink' ? sinkLog : echoLog).info(
    { address, pod: pod.pod, version: pod.version },
    `${name} listening`,
  );
  const close = once(() => tracker.close(server, options.drainMs ?? DEFAULT_DRAIN_MS));
  return { address, close };
}

function peerOf(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}
