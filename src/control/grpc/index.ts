// The control plane's gRPC port (15010): a TLS server other services register on (the CA's CSR service now,
// the config stream later), the CSR service adapter, and the node's client for it.

export {
  CERTIFICATE_SERVICE_NAME,
  type CreateCertificateRequest,
  type CreateCertificateResponse,
  certificateServiceClass,
  certificateServiceImplementation,
  type JoinRequest,
  type JoinResponse,
} from './ca-service.ts';
export { CaClient, type CaClientOptions, type NodeCredential } from './client.ts';
export { MutableCertificateProvider, type TlsMaterial } from './credentials.ts';
export {
  ControlGrpcServer,
  type ControlGrpcServerOptions,
  callerIdentity,
  DEFAULT_GRPC_PORT,
} from './server.ts';
export { ERROR_CODE_KEY, fromServiceError, toServiceError } from './status.ts';
