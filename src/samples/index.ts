// The sample workloads the demo, docs and tests run inside pods: HTTP/h2c/WebSocket echo, TCP echo,
// sink, gRPC echo (and a client for it) and the storefront app. Each starts from a function here
// and from `ambit sample`.

export {
  hostPort,
  parseInteger,
  parseLabels,
  parsePort,
  parseUpstreamList,
  parseUpstreamUrl,
  SAMPLE_BAD_ARG,
} from './args.ts';
export {
  describeRequest,
  type EchoOptions,
  type EchoReply,
  type EchoShape,
  INJECTED_FAILURE_STATUS,
  MAX_DELAY_MS,
  MAX_SIZE_BYTES,
  parseEchoQuery,
  SAMPLE_BAD_QUERY,
  SAMPLE_INJECTED_FAILURE,
  startEcho,
} from './echo.ts';
export { SAMPLE_ERRORS } from './errors.ts';
export {
  type CallStatus,
  callEcho,
  DEFAULT_CALL_TIMEOUT_MS,
  type EchoCall,
  type EchoCallResult,
  statusName,
  validateCall,
} from './grpc-client.ts';
export {
  type CollectReply,
  createEchoClient,
  ECHO_PROTO_PATH,
  ECHO_SERVICE,
  type EchoClient,
  type EchoReply as GrpcEchoReply,
  type EchoRequest as GrpcEchoRequest,
  type GrpcEchoOptions,
  MAX_STREAM_COUNT,
  MAX_STREAM_INTERVAL_MS,
  type StreamRequest,
  startGrpcEcho,
} from './grpc-echo.ts';
export {
  DEFAULT_HOST,
  type ListenOptions,
  SAMPLE_LISTEN_FAILED,
  type SampleAddress,
  type SampleServer,
} from './lifecycle.ts';
export { type PodInfo, type PodOverrides, resolvePod } from './pod.ts';
export {
  type CatalogOptions,
  DEFAULT_TIMEOUT_MS,
  describeChain,
  type FrontendOptions,
  PRODUCTS,
  type Product,
  type ProductPage,
  RATINGS,
  SAMPLE_UPSTREAM_FAILED,
  type ServedBy,
  type StorefrontOptions,
  type StorefrontRole,
  showsRatings,
  startCatalog,
  startFrontend,
  startRatings,
} from './storefront/index.ts';
export { startSink, startTcpEcho, type TcpSampleOptions } from './tcp.ts';
export {
  acceptKey,
  CLOSE,
  closePayload,
  encodeFrame,
  type Frame,
  handshakeProblem,
  MAX_FRAME_BYTES,
  OPCODE,
  type ParseResult,
  parseFrame,
  WEBSOCKET_GUID,
} from './websocket.ts';
