// An OTLP trace receiver for tests: the parts of opentelemetry-proto's trace export messages that tests
// read (no package ships the .proto files; the SDK's transformer writes protobuf itself and only decodes
// responses, so the messages are described here from the opentelemetry-proto field numbers and
// @grpc/proto-loader decodes them), and an HTTP/protobuf collector on a given address.
//
// Run as a program (`node test/helpers/otlp.ts HOST PORT`), it serves POST /v1/traces there and prints
// each span it receives as one JSON line: the end-to-end tests run it inside a lab pod.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const kv = { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 } };
/** The parts of opentelemetry-proto's trace export messages these receivers read. */
export const OTLP: Parameters<typeof protoLoader.fromJSON>[0] = {
  nested: {
    opentelemetry: {
      nested: {
        proto: {
          nested: {
            common: {
              nested: {
                v1: {
                  nested: {
                    AnyValue: {
                      oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue'] } },
                      fields: {
                        stringValue: { type: 'string', id: 1 },
                        boolValue: { type: 'bool', id: 2 },
                        intValue: { type: 'int64', id: 3 },
                        doubleValue: { type: 'double', id: 4 },
                      },
                    },
                    KeyValue: { fields: kv },
                    InstrumentationScope: {
                      fields: { name: { type: 'string', id: 1 }, version: { type: 'string', id: 2 } },
                    },
                  },
                },
              },
            },
            resource: {
              nested: {
                v1: {
                  nested: {
                    Resource: {
                      fields: {
                        attributes: {
                          rule: 'repeated',
                          type: 'opentelemetry.proto.common.v1.KeyValue',
                          id: 1,
                        },
                      },
                    },
                  },
                },
              },
            },
            trace: {
              nested: {
                v1: {
                  nested: {
                    ResourceSpans: {
                      fields: {
                        resource: { type: 'opentelemetry.proto.resource.v1.Resource', id: 1 },
                        scopeSpans: { rule: 'repeated', type: 'ScopeSpans', id: 2 },
                      },
                    },
                    ScopeSpans: {
                      fields: {
                        scope: { type: 'opentelemetry.proto.common.v1.InstrumentationScope', id: 1 },
                        spans: { rule: 'repeated', type: 'Span', id: 2 },
                      },
                    },
                    Span: {
                      fields: {
                        traceId: { type: 'bytes', id: 1 },
                        spanId: { type: 'bytes', id: 2 },
                        traceState: { type: 'string', id: 3 },
                        parentSpanId: { type: 'bytes', id: 4 },
                        name: { type: 'string', id: 5 },
                        kind: { type: 'SpanKind', id: 6 },
                        attributes: {
                          rule: 'repeated',
                          type: 'opentelemetry.proto.common.v1.KeyValue',
                          id: 9,
                        },
                        status: { type: 'Status', id: 15 },
                      },
                    },
                    Status: {
                      fields: { message: { type: 'string', id: 2 }, code: { type: 'StatusCode', id: 3 } },
                    },
                    SpanKind: {
                      values: {
                        SPAN_KIND_UNSPECIFIED: 0,
                        SPAN_KIND_INTERNAL: 1,
                        SPAN_KIND_SERVER: 2,
                        SPAN_KIND_CLIENT: 3,
                        SPAN_KIND_PRODUCER: 4,
                        SPAN_KIND_CONSUMER: 5,
                      },
                    },
                    StatusCode: { values: { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 } },
                  },
                },
              },
            },
            collector: {
              nested: {
                trace: {
                  nested: {
                    v1: {
                      nested: {
                        ExportTraceServiceRequest: {
                          fields: {
                            resourceSpans: {
                              rule: 'repeated',
                              type: 'opentelemetry.proto.trace.v1.ResourceSpans',
                              id: 1,
                            },
                          },
                        },
                        ExportTraceServiceResponse: { fields: {} },
                        TraceService: {
                          methods: {
                            Export: {
                              requestType: 'ExportTraceServiceRequest',
                              responseType: 'ExportTraceServiceResponse',
                              comment: '',
                            },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

const definition = protoLoader.fromJSON(OTLP, {
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
});
export const traceService = definition[
  'opentelemetry.proto.collector.trace.v1.TraceService'
] as grpc.ServiceDefinition;
export const exportMethod = traceService.Export!;

interface WireKeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: number; doubleValue?: number };
}
interface WireSpan {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId?: Buffer;
  traceState?: string;
  name: string;
  kind: string;
  attributes?: WireKeyValue[];
  status?: { code?: string };
}
export interface WireRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: WireKeyValue[] };
    scopeSpans?: Array<{ spans?: WireSpan[] }>;
  }>;
}

/** A span as the test reads it: hex ids and plain attributes. */
export interface Received {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  status: string;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
}

function plain(kvs: WireKeyValue[] = []): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of kvs) {
    const v = value?.stringValue ?? value?.intValue ?? value?.boolValue ?? value?.doubleValue;
    if (v !== undefined) out[key] = v;
  }
  return out;
}

export function spansOf(req: WireRequest): Received[] {
  return (req.resourceSpans ?? []).flatMap((rs) =>
    (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        traceId: s.traceId.toString('hex'),
        spanId: s.spanId.toString('hex'),
        parentSpanId: s.parentSpanId?.toString('hex') ?? '',
        name: s.name,
        kind: s.kind,
        status: s.status?.code ?? 'STATUS_CODE_UNSET',
        attributes: plain(s.attributes),
        resource: plain(rs.resource?.attributes),
      })),
    ),
  );
}

/** An HTTP/protobuf OTLP collector on `host:port` (0: any free port); `spans` fills as exports arrive. */
export async function httpCollector(
  host: string,
  port: number,
  onSpan?: (span: Received) => void,
): Promise<{
  port: number;
  spans: Received[];
  headers: http.IncomingHttpHeaders[];
  close: () => Promise<void>;
}> {
  const spans: Received[] = [];
  const headers: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (
        req.method !== 'POST' ||
        req.url !== '/v1/traces' ||
        req.headers['content-type'] !== 'application/x-protobuf'
      ) {
        res.writeHead(404).end();
        return;
      }
      headers.push(req.headers);
      for (const span of spansOf(exportMethod.requestDeserialize(Buffer.concat(chunks)) as WireRequest)) {
        spans.push(span);
        onSpan?.(span);
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    spans,
    headers,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.main) {
  const [host = '0.0.0.0', port = '4318'] = process.argv.slice(2);
  await httpCollector(host, Number(port), (span) => console.log(JSON.stringify(span)));
  console.log(JSON.stringify({ listening: `${host}:${port}` }));
}
