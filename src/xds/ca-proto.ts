// The CSR service's protocol (ambit.ca.v1, modelled on Istio's IstioCertificateService), shared by
// the control plane that serves it and the nodes that call it.

import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface CreateCertificateRequest {
  csr: string;
  validity_duration: string | number;
  impersonated_identity: string;
}
export interface CreateCertificateResponse {
  cert_chain: string[];
}
export interface JoinRequest {
  token: string;
  csr: string;
}
export interface JoinResponse {
  node: string;
  cert_chain: string[];
  trust_bundle: string;
}

let cached: grpc.GrpcObject | undefined;
function proto(): grpc.GrpcObject {
  cached ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(join(import.meta.dirname, 'proto', 'ca.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
    }),
  );
  return cached;
}

/** The generated client constructor and service definition for ambit.ca.v1.CertificateService. */
export function certificateServiceClass(): grpc.ServiceClientConstructor {
  const pkg = (proto().ambit as grpc.GrpcObject).ca as grpc.GrpcObject;
  return (pkg.v1 as grpc.GrpcObject).CertificateService as grpc.ServiceClientConstructor;
}

export const CERTIFICATE_SERVICE_NAME = 'ambit.ca.v1.CertificateService';
