/**
 * The one error type that crosses layers. Every failure raised by our code carries the gRPC status the CSI
 * spec wants for it, chosen where the failure is understood (OpenStack client, mount layer, handler), so
 * the server wrapper never has to guess. Anything that is not a CodedError is answered as INTERNAL.
 */
import { status } from '@grpc/grpc-js';

export { status as Status };

export class CodedError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(details, options);
    this.name = 'CodedError';
  }
}

export function isCodedError(e: unknown): e is CodedError {
  return e instanceof CodedError;
}

/** The message of any thrown value, for wrapping; never includes a stack. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
