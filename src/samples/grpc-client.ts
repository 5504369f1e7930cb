// `ambit sample grpc-client`: one call to the gRPC echo (unary, or a server stream of N replies) that
// reports every reply and the call's final status, so a test inside a pod sees what a real gRPC
// client sees through the mesh: messages, `grpc-status` and its details.

import * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../errors/index.ts';
import { SAMPLE_ERRORS } from './errors.ts';
import { createEchoClient, type EchoReply } from './grpc-echo.ts';

export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

export interface EchoCall {
  /** `host:port` of the gRPC echo (a Service VIP and port through the mesh). */
  target: string;
  message: string;
  /** Server-streaming `Stream` with this many replies; unary `Echo` when undefined. */
  stream?: number;
  /** Gap between streamed replies (ms). */
  intervalMs?: number;
  /** The call's deadline (ms); DEADLINE_EXCEEDED after it. */
  timeoutMs?: number;
}

/** The call's end as the client saw it: gRPC status code, its name and the details text. */
export interface CallStatus {
  code: number;
  name: string;
  details: string;
}

export interface EchoCallResult {
  rpc: 'Echo' | 'Stream';
  replies: EchoReply[];
  status: CallStatus;
}

/** The name of a gRPC status code (`OK`, `INVALID_ARGUMENT`, …), or `CODE_<n>` for an unknown one. */
export function statusName(code: number): string {
  const name = (grpc.status as unknown as Record<number, string | undefined>)[code];
  return name ?? `CODE_${code}`;
}

function toStatus(s: { code: number; details: string }): CallStatus {
  return { code: s.code, name: statusName(s.code), details: s.details };
}

/** Checks a call before it is made; AMBIT_ERR_SAMPLE_BAD_ARG names the bad field. */
export function validateCall(call: EchoCall): void {
  const bad = (field: string, why: string) =>
    new AmbitError(SAMPLE_ERRORS.BAD_ARG, `${field} ${why}`, { detail: { field } });
  if (!/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(call.target)) {
    throw bad('--target', `must be host:port, got '${call.target}'`);
  }
  // The server's own limits are not checked here, so a test can see it refuse with INVALID_ARGUMENT.
  if (call.stream !== undefined && !(Number.isInteger(call.stream) && call.stream >= 0)) {
    throw bad('--stream', `must be a count of replies, got '${call.stream}'`);
  }
}

/** Makes one call and resolves with its replies and status; never rejects for a non-OK status. */
export async function callEcho(call: EchoCall): Promise<EchoCallResult> {
  validateCall(call);
  const client = createEchoClient(call.target);
  const deadline = Date.now() + (call.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
  try {
    if (call.stream === undefined) return await unary(client, call.message, deadline);
    return await serverStream(client, call, deadline);
  } finally {
    client.close();
  }
}

function unary(
  client: ReturnType<typeof createEchoClient>,
  message: string,
  deadline: number,
): Promise<EchoCallResult> {
  return new Promise((resolve) => {
    const replies: EchoReply[] = [];
    let status: CallStatus | undefined;
    let answered = false;
    const settle = () => {
      if (status && answered) resolve({ rpc: 'Echo', replies, status });
    };
    const c = client.Echo({ message }, new grpc.Metadata(), { deadline }, (_err, reply) => {
      if (reply) replies.push(reply);
      answered = true;
      settle();
    });
    c.on('status', (s: grpc.StatusObject) => {
      status = toStatus(s);
      settle();
    });
  });
}

function serverStream(
  client: ReturnType<typeof createEchoClient>,
  call: EchoCall,
  deadline: number,
): Promise<EchoCallResult> {
  return new Promise((resolve) => {
    const replies: EchoReply[] = [];
    const s = client.Stream(
      { message: call.message, count: call.stream ?? 0, intervalMs: call.intervalMs ?? 0 },
      { deadline },
    );
    let status: CallStatus | undefined;
    let ended = false;
    const settle = () => {
      if (status && ended) resolve({ rpc: 'Stream', replies, status });
    };
    const end = () => {
      ended = true;
      settle();
    };
    s.on('data', (reply: EchoReply) => replies.push(reply));
    // The stream ends with 'end' (OK) or 'error' (any other status); 'status' carries the status either way.
    s.on('end', end);
    s.on('error', end);
    s.on('status', (st: grpc.StatusObject) => {
      status = toStatus(st);
      settle();
    });
  });
}
