// What a query says and what the server answers, as bytes in and bytes out: reading a query (with
// every reason to refuse it), building answers, and truncating an answer to what the client takes.
// The wire format is dns-packet's; nothing here touches a socket.

import {
  type Answer,
  AUTHORITATIVE_ANSWER,
  CHECKING_DISABLED,
  type DecodedPacket,
  decode,
  encode,
  type OptAnswer,
  type Question,
  RECURSION_AVAILABLE,
  RECURSION_DESIRED,
  TRUNCATED_RESPONSE,
} from 'dns-packet';
import { invalidNameReason, type Lookup } from './names.ts';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODE;

/** A classic DNS message over UDP is at most 512 bytes unless the client says more with EDNS0. */
export const CLASSIC_UDP_SIZE = 512;
/** What we advertise and honour at most over UDP: the DNS flag day 2020 size, safe from fragmentation. */
export const EDNS_UDP_SIZE = 1232;
/** Queries, unlike answers, are small: a longer one is refused rather than buffered. */
export const MAX_QUERY_BYTES = 4096;
/** A TCP message's length is two bytes. */
export const MAX_TCP_MESSAGE = 65_535;
const HEADER_BYTES = 12;
const OPCODE_BITS = 0x7800;

export interface Query {
  id: number;
  /** The client's header flags (opcode, RD, CD), for echoing. */
  flags: number;
  question: Question;
  /** The largest answer the client takes over UDP. */
  udpSize: number;
  /** The client sent an OPT record, so the answer carries one too (RFC 6891). */
  edns: boolean;
}

/** A header and nothing more, or undefined when fewer than 12 bytes came. */
export interface Header {
  id: number;
  flags: number;
  qr: boolean;
  opcode: string;
}

export type Parsed =
  | { ok: true; query: Query }
  /** `reply` when a header could be read and an error answer is due; without it the packet is dropped. */
  | { ok: false; reason: string; rcode?: Rcode; reply?: Buffer };

/** The header of any message of at least 12 bytes: dns-packet decodes it with the section counts zeroed. */
export function readHeader(bytes: Buffer): Header | undefined {
  if (bytes.length < HEADER_BYTES) return undefined;
  const head = Buffer.alloc(HEADER_BYTES);
  bytes.copy(head, 0, 0, 4);
  const p = decode(head) as DecodedPacket & { opcode?: string };
  return { id: p.id ?? 0, flags: p.flags ?? 0, qr: p.flag_qr, opcode: p.opcode ?? 'QUERY' };
}

function refuse(header: Header, rcode: Rcode, reason: string): Parsed {
  return { ok: false, reason, rcode, reply: headerOnly(header, rcode) };
}

/** Reads one query. Never throws: every way a packet can be wrong is a reason, with the answer due. */
export function parseQuery(bytes: Buffer): Parsed {
  const header = readHeader(bytes);
  if (!header) return { ok: false, reason: 'short' };
  // Answering a response could start a loop between two servers (each answering the other's error):
  // responses are dropped, as BIND and Unbound drop them.
  if (header.qr) return { ok: false, reason: 'response' };
  if (bytes.length > MAX_QUERY_BYTES) return refuse(header, 'FORMERR', 'oversize');
  if (header.opcode !== 'QUERY') return refuse(header, 'NOTIMP', 'opcode');
  let packet: DecodedPacket;
  try {
    packet = decode(bytes);
  } catch {
    return refuse(header, 'FORMERR', 'undecodable');
  }
  const questions = packet.questions ?? [];
  const question = questions[0];
  if (questions.length !== 1 || question === undefined) return refuse(header, 'FORMERR', 'question_count');
  if (invalidNameReason(question.name) !== undefined) return refuse(header, 'FORMERR', 'bad_name');
  const opts = (packet.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
  if (opts.length > 1) return refuse(header, 'FORMERR', 'opt_count');
  const opt = opts[0];
  const udpSize = opt
    ? Math.min(Math.max(opt.udpPayloadSize, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE)
    : CLASSIC_UDP_SIZE;
  return {
    ok: true,
    query: { id: header.id, flags: header.flags, question, udpSize, edns: opt !== undefined },
  };
}

function opt(): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: EDNS_UDP_SIZE,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

/** An error answer to a query whose question could not be read: header only, id echoed. */
export function headerOnly(header: Header, rcode: Rcode): Buffer {
  const flags = (header.flags & (OPCODE_BITS | RECURSION_DESIRED | CHECKING_DISABLED)) | RCODE[rcode];
  return encode({ type: 'response', id: header.id, flags, questions: [] });
}

export interface AnswerOptions {
  ttl: number;
  /** Recursion available: there is an upstream to forward to. */
  ra: boolean;
  /** Authoritative: the answer comes from the table. */
  aa: boolean;
}

/** An answer to `q` with `rcode` and `answers`, echoing id, question (its case too), RD and CD. */
export function answer(
  q: Query,
  rcode: Rcode,
  answers: Answer[],
  o: Pick<AnswerOptions, 'aa' | 'ra'>,
  authorities: Answer[] = [],
): Buffer {
  let flags = (q.flags & (OPCODE_BITS | RECURSION_DESIRED | CHECKING_DISABLED)) | RCODE[rcode];
  if (o.aa) flags |= AUTHORITATIVE_ANSWER;
  if (o.ra) flags |= RECURSION_AVAILABLE;
  return encode({
    type: 'response',
    id: q.id,
    flags,
    questions: [q.question],
    answers,
    authorities,
    additionals: q.edns ? [opt()] : [],
  });
}

/** What the table says about `q`, as an answer, or undefined when the name is not the table's. */
export function tableAnswer(
  q: Query,
  found: Lookup,
  o: AnswerOptions,
): { bytes: Buffer; rcode: Rcode } | undefined {
  switch (found.kind) {
    case 'unknown':
      return undefined;
    case 'nxdomain':
      return { bytes: answer(q, 'NXDOMAIN', [], o, [soa(found.zone, o.ttl)]), rcode: 'NXDOMAIN' };
    case 'nodata':
      return {
        bytes: answer(q, 'NOERROR', [], o, found.zone === undefined ? [] : [soa(found.zone, o.ttl)]),
        rcode: 'NOERROR',
      };
    case 'answer': {
      const name = q.question.name;
      const records: Answer[] = found.addresses.map((data) => ({
        type: found.type,
        name,
        ttl: o.ttl,
        class: 'IN',
        data,
      }));
      return { bytes: answer(q, 'NOERROR', records, o), rcode: 'NOERROR' };
    }
  }
}

/**
 * The zone's SOA for a negative answer, so resolvers cache the miss for the answer TTL (RFC 2308): with
 * ndots 5 every outside name is first asked under each search domain. Names as CoreDNS gives them.
 */
function soa(zone: string, ttl: number): Answer {
  return {
    type: 'SOA',
    name: zone,
    ttl,
    class: 'IN',
    data: {
      mname: `ns.dns.${zone}`,
      rname: `hostmaster.${zone}`,
      serial: 1,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: ttl,
    },
  };
}

/**
 * `bytes` when it fits in `limit`; otherwise the same answer with TC set and its records dropped (the
 * OPT record kept), so that the client asks again over TCP. Undefined when `bytes` does not decode.
 */
export function fit(bytes: Buffer, limit: number): Buffer | undefined {
  if (bytes.length <= limit) return bytes;
  let p: DecodedPacket;
  try {
    p = decode(bytes);
  } catch {
    return undefined;
  }
  return encode({
    type: 'response',
    id: p.id,
    flags: (p.flags ?? 0) | TRUNCATED_RESPONSE,
    questions: p.questions ?? [],
    additionals: (p.additionals ?? []).filter((a) => a.type === 'OPT'),
  });
}
