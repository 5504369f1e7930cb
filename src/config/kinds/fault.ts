// HTTPFault (ambit.dev/v1alpha1), Ambit's own kind: fault injection for chaos testing, named by an
// HTTPRoute or GRPCRoute `ExtensionRef` filter (group ambit.dev, kind HTTPFault) and carried out by
// the waypoint. Its spec is Istio's VirtualService `fault` (HTTPFaultInjection) field for field:
// `delay {fixedDelay, percentage {value}}` and `abort {httpStatus | grpcStatus, percentage {value}}`,
// validated as Istio validates it. Unlike Istio, a missing `percentage` means 100 (every request):
// the resource exists only to inject faults.

import { z } from 'zod';
import { dns1123Subdomain, duration, parseDuration, percentage } from '../fields.ts';
import { envelope, namespacedMetadata } from '../meta.ts';

/**
 * gRPC status codes by the names Istio accepts for `abort.grpcStatus` (upper case, as in
 * https://github.com/grpc/grpc/blob/master/doc/statuscodes.md).
 */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

const GRPC_STATUS_MESSAGE =
  'must be a gRPC status code: a name such as UNAVAILABLE or NOT_FOUND, or a number from 0 to 16';

/** Istio's `Percent`: `{value}`, a double from 0 to 100. */
const faultPercentage = z.object({ value: percentage }).strict();

const delay = z
  .object({
    /** How long the request is held before it goes on (or is aborted). */
    fixedDelay: duration,
    percentage: faultPercentage.optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    const ms = parseDuration(d.fixedDelay);
    if (ms === undefined) return; // `duration` has said so
    // Istio's ValidateDuration: at least 1ms, and nothing finer than a millisecond.
    if (ms < 1) ctx.addIssue({ code: 'custom', path: ['fixedDelay'], message: 'must be at least 1ms' });
    else if (Math.abs(ms - Math.round(ms)) > 1e-6) {
      ctx.addIssue({
        code: 'custom',
        path: ['fixedDelay'],
        message: 'must be a whole number of milliseconds (as Istio requires)',
      });
    }
  });

const abort = z
  .object({
    httpStatus: z
      .number({ error: 'must be an HTTP status code from 200 to 599' })
      .int('must be an HTTP status code from 200 to 599')
      .min(200, 'must be an HTTP status code from 200 to 599')
      .max(599, 'must be an HTTP status code from 200 to 599')
      .optional(),
    grpcStatus: z
      .union([
        z.string().refine((s) => Object.hasOwn(GRPC_STATUS_CODES, s), GRPC_STATUS_MESSAGE),
        z.number().int(GRPC_STATUS_MESSAGE).min(0, GRPC_STATUS_MESSAGE).max(16, GRPC_STATUS_MESSAGE),
      ])
      .optional(),
    percentage: faultPercentage.optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.httpStatus === undefined && a.grpcStatus === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'needs httpStatus or grpcStatus' });
    }
    if (a.httpStatus !== undefined && a.grpcStatus !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['grpcStatus'],
        message: 'is only allowed without httpStatus: give one of httpStatus and grpcStatus',
      });
    }
  });

const httpFaultSpec = z
  .object({ delay: delay.optional(), abort: abort.optional() })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.delay === undefined && spec.abort === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'needs a delay, an abort or both' });
    }
  });

export const httpFaultSchema = envelope('HTTPFault', namespacedMetadata(dns1123Subdomain), httpFaultSpec);
export type HTTPFaultResource = z.infer<typeof httpFaultSchema>;
