// The CSR service on 15010: loads ambit.ca.v1 from its .proto and adapts gRPC calls to the CA's decisions
// (CaService), authenticating callers by their node credential.

import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { logger } from '../../log/index.ts';
import type { CaService } from '../ca/index.ts';
import { callerIdentity } from './server.ts';
import { toServiceError } from './status.ts';

const log = logger('ca');

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

/** The implementation to register on the ControlGrpcServer. */
export function certificateServiceImplementation(service: CaService): {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
} {
  const implementation: grpc.UntypedServiceImplementation = {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<CreateCertificateRequest, CreateCertificateResponse>,
      done: grpc.sendUnaryData<CreateCertificateResponse>,
    ) => {
      const run = async () => {
        const node = service.nodeOf(callerIdentity(call));
        const issued = await service.createCertificate(node, call.request.csr, {
          ttlSeconds: Number(call.request.validity_duration) || undefined,
          impersonatedIdentity: call.request.impersonated_identity || undefined,
        });
        log.info({ node, identity: issued.id, serial: issued.serial }, 'issued workload certificate');
        return { cert_chain: issued.chain };
      };
      run().then(
        (res) => done(null, res),
        (err) => {
          log.warn({ err: String(err?.message ?? err), code: err?.code }, 'refused certificate request');
          done(toServiceError(err));
        },
      );
    },
    Join: (call: grpc.ServerUnaryCall<JoinRequest, JoinResponse>, done: grpc.sendUnaryData<JoinResponse>) => {
      service.join(call.request.token, call.request.csr).then(
        (res) => {
          log.info({ node: res.node, serial: res.issued.serial }, 'node joined');
          done(null, { node: res.node, cert_chain: res.issued.chain, trust_bundle: res.trustBundle });
        },
        (err) => {
          log.warn({ err: String(err?.message ?? err), code: err?.code }, 'refused join');
          done(toServiceError(err));
        },
      );
    },
  };
  return { definition: certificateServiceClass().service, implementation };
}
