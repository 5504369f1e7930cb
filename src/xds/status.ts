// Ambit error codes on the wire: each refusal maps to a gRPC status, and the Ambit code travels in the
// `ambit-error-code` trailer (and leads the message) so clients can assert on it.

import * as grpc from '@grpc/grpc-js';
import { CONFIG_INVALID } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { XDS_ERRORS } from './errors.ts';

export const ERROR_CODE_KEY = 'ambit-error-code';

// The CA and config-stream refusals below are raised by src/control (CONTROL_ERRORS), a higher layer
// this folder may not import, so they stay literal codes here; keep them in step with that catalogue.
const STATUS_BY_CODE: Record<string, grpc.status> = {
  AMBIT_ERR_CA_BAD_CSR: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_BAD_CSR_SIGNATURE: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_NOT_SPIFFE: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_FOREIGN_TRUST_DOMAIN: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_MULTIPLE_URI_SANS: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_NO_URI_SAN: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_UNEXPECTED_SAN: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_WEAK_KEY: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_IDENTITY_MISMATCH: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_CA_UNKNOWN_TOKEN: grpc.status.UNAUTHENTICATED,
  AMBIT_ERR_CA_REVOKED_TOKEN: grpc.status.UNAUTHENTICATED,
  AMBIT_ERR_CA_EXPIRED_TOKEN: grpc.status.UNAUTHENTICATED,
  AMBIT_ERR_CA_TOKEN_USED: grpc.status.UNAUTHENTICATED,
  AMBIT_ERR_CA_UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  AMBIT_ERR_CA_NODE_REVOKED: grpc.status.UNAUTHENTICATED,
  AMBIT_ERR_CA_IMPERSONATION: grpc.status.PERMISSION_DENIED,
  [CONFIG_INVALID]: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_XDS_BAD_REQUEST: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_XDS_UNKNOWN_TYPE: grpc.status.INVALID_ARGUMENT,
  AMBIT_ERR_XDS_FIRST_REQUEST_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
};

/** A gRPC error for any thrown value; AmbitErrors keep their code. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  if (err instanceof AmbitError) {
    metadata.set(ERROR_CODE_KEY, err.code);
    return {
      code: STATUS_BY_CODE[err.code] ?? grpc.status.INTERNAL,
      details: `${err.code}: ${err.message}`,
      metadata,
    };
  }
  metadata.set(ERROR_CODE_KEY, XDS_ERRORS.INTERNAL);
  return { code: grpc.status.INTERNAL, details: 'internal error', metadata };
}

/** Back from the wire: an AmbitError with the server's code, or AMBIT_ERR_CA_UNREACHABLE for transport failures. */
export function fromServiceError(err: grpc.ServiceError): AmbitError {
  const code = err.metadata?.get(ERROR_CODE_KEY)[0];
  if (typeof code === 'string') {
    const message = err.details.startsWith(`${code}: `) ? err.details.slice(code.length + 2) : err.details;
    return new AmbitError(code, message, { cause: err, detail: { grpcStatus: err.code } });
  }
  return new AmbitError(
    XDS_ERRORS.CA_UNREACHABLE,
    `the control plane's CA could not be reached: ${err.details || err.message}`,
    {
      cause: err,
      detail: { grpcStatus: err.code },
    },
  );
}
