// `ambit sample grpc-echo`: the Echo service of proto/echo.proto over insecure HTTP/2 (the mesh
// supplies TLS). It also exports a typed client constructor so tests and benchmarks can call it.

import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { logger } from '../log/index.ts';
import { hostPort } from './args.ts';
import {
  DEFAULT_DRAIN_MS,
  DEFAULT_HOST,
  type ListenOptions,
  listenError,
  once,
  type SampleServer,
} from './lifecycle.ts';
import { type PodInfo, type PodOverrides, resolvePod } from './pod.ts';

export const ECHO_PROTO_PATH = fileURLToPath(new URL('./proto/echo.proto', import.meta.url));
export const ECHO_SERVICE = 'ambit.sample.v1.Echo';
export const MAX_STREAM_COUNT = 10_000;
export const MAX_STREAM_INTERVAL_MS = 10_000;

export interface EchoRequest {
  message: string;
}
export interface StreamRequest {
  message: string;
  count: number;
  intervalMs: number;
}
export interface EchoReply {
  message: string;
  pod: string;
  version: string;
  namespace: string;
  sequence: number;
  peer: string;
}
export interface CollectReply {
  messages: string[];
  count: number;
  pod: string;
  version: string;
  namespace: string;
}

/** The generated client's calls, typed (grpc-js builds them at run time from the .proto). */
export interface EchoClient extends grpc.Client {
  Echo(
    req: EchoRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
  Echo(
    req: EchoRequest,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
  Echo(
    req: EchoRequest,
    cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void,
  ): grpc.ClientUnaryCall;
  Stream(req: Partial<StreamRequest>, options?: grpc.CallOptions): grpc.ClientReadableStream<EchoReply>;
  Collect(
    cb: (err: grpc.ServiceError | null, reply?: CollectReply) => void,
  ): grpc.ClientWritableStream<EchoRequest>;
  Chat(options?: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoReply>;
}

type EchoClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => EchoClient;

export interface GrpcEchoOptions extends ListenOptions {
  pod?: PodOverrides;
}

const log = logger('sample-grpc-echo');

let loaded: { service: grpc.ServiceDefinition; Client: EchoClientConstructor } | undefined;

/** Loads echo.proto once. Field names are camelCase in JS (`intervalMs`). */
function load(): { service: grpc.ServiceDefinition; Client: EchoClientConstructor } {
  if (loaded) return loaded;
  const definition = loadSync(ECHO_PROTO_PATH, { keepCase: false, defaults: true, longs: Number });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    ambit: { sample: { v1: { Echo: EchoClientConstructor & { service: grpc.ServiceDefinition } } } };
  };
  const Echo = pkg.ambit.sample.v1.Echo;
  loaded = { service: Echo.service, Client: Echo };
  return loaded;
}

/** A client for the gRPC echo at `target` (`host:port`), insecure unless credentials are given. */
export function createEchoClient(
  target: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): EchoClient {
  return new (load().Client)(target, credentials);
}

/** Starts the gRPC echo server. */
export async function startGrpcEcho(options: GrpcEchoOptions): Promise<SampleServer> {
  const pod = resolvePod(options.pod);
  const host = options.host ?? DEFAULT_HOST;
  const server = new grpc.Server();
  server.addService(load().service, handlers(pod));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(hostPort(host, options.port), grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(listenError(host, options.port, err)) : resolve(bound),
    );
  });
  const address = { host, port };
  log.info({ address, pod: pod.pod, version: pod.version }, 'grpc-echo listening');
  const close = once(async () => {
    const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    const force = setTimeout(() => server.forceShutdown(), options.drainMs ?? DEFAULT_DRAIN_MS);
    try {
      await drained;
    } finally {
      clearTimeout(force);
    }
  });
  return { address, close };
}

function handlers(pod: PodInfo): grpc.UntypedServiceImplementation {
  const reply = (message: string, sequence: number, peer: string): EchoReply => ({
    message,
    pod: pod.pod,
    version: pod.version ?? '',
    namespace: pod.namespace,
    sequence,
    peer,
  });

  const Echo: grpc.handleUnaryCall<EchoRequest, EchoReply> = (call, callback) => {
    callback(null, reply(call.request.message, 0, call.getPeer()));
  };

  const Stream: grpc.handleServerStreamingCall<StreamRequest, EchoReply> = (call) => {
    const { message, count, intervalMs } = call.request;
    if (count > MAX_STREAM_COUNT || intervalMs > MAX_STREAM_INTERVAL_MS) {
      // grpc-js turns an 'error' event carrying {code, details} into the call's status.
      call.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: `count must be at most ${MAX_STREAM_COUNT} and intervalMs at most ${MAX_STREAM_INTERVAL_MS}`,
      });
      return;
    }
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => clearTimeout(timer);
    call.on('cancelled', finish);
    const next = () => {
      if (call.cancelled) return;
      if (sent === count) {
        call.end();
        return;
      }
      sent += 1;
      call.write(reply(message, sent, call.getPeer()));
      timer = setTimeout(next, intervalMs);
    };
    next();
  };

  const Collect: grpc.handleClientStreamingCall<EchoRequest, CollectReply> = (call, callback) => {
    const messages: string[] = [];
    call.on('data', (req: EchoRequest) => messages.push(req.message));
    call.on('error', () => {});
    call.on('end', () =>
      callback(null, {
        messages,
        count: messages.length,
        pod: pod.pod,
        version: pod.version ?? '',
        namespace: pod.namespace,
      }),
    );
  };

  const Chat: grpc.handleBidiStreamingCall<EchoRequest, EchoReply> = (call) => {
    let sequence = 0;
    call.on('data', (req: EchoRequest) => {
      sequence += 1;
      call.write(reply(req.message, sequence, call.getPeer()));
    });
    call.on('error', () => {});
    call.on('end', () => call.end());
  };

  return { Echo, Stream, Collect, Chat } as grpc.UntypedServiceImplementation;
}
