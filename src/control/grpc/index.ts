// The control plane's gRPC port (15010): a TLS server the CSR service and the config stream register on,
// and the CSR service adapter. The nodes' side of both lives in src/xds.

export { certificateServiceImplementation } from './ca-service.ts';
export { MutableCertificateProvider, type TlsMaterial } from './credentials.ts';
export {
  ControlGrpcServer,
  type ControlGrpcServerOptions,
  callerIdentity,
  DEFAULT_GRPC_PORT,
} from './server.ts';
