// The CSR service on 15010: adapts gRPC calls to the CA's decisions
// (CaService), authenticating callers by their node credential.

import type * as grpc from '@grpc/grpc-js';
import { logger } from '../../log/index.ts';
import {
  type CreateCertificateRequest,
  type CreateCertificateResponse,
  certificateServiceClass,
  type JoinRequest,
  type JoinResponse,
  toServiceError,
} from '../../xds/index.ts';
import type { CaService } from '../ca/index.ts';
import { callerIdentity } from './server.ts';

const log = logger('ca');

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
