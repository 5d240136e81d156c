// Every error leaves the controller as UCP's {"errors":[{"code","message"}]} body: ApiError with its
// own status, Nest's HttpException mapped by status, anything else a 500 whose cause is logged only.
import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import { ApiError, errorBody } from '@orca/api';
import { StoreUnavailableError } from '@orca/store';
import type { Response } from 'express';

const CODES: Record<number, string> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'REQUEST_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  503: 'UNAVAILABLE',
};

export function errorResponse(error: unknown): { status: number; body: ReturnType<typeof errorBody> } {
  if (error instanceof ApiError) return { status: error.status, body: error.body() };
  if (error instanceof StoreUnavailableError) {
    return { status: 503, body: errorBody('STORE_UNAVAILABLE', 'the store is unavailable, try again') };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    return { status, body: errorBody(CODES[status] ?? 'ERROR', error.message) };
  }
  // body-parser errors (malformed JSON, oversized bodies) carry their status.
  const withStatus = error as { status?: unknown; type?: unknown; message?: unknown };
  if (typeof withStatus.status === 'number' && withStatus.status >= 400 && withStatus.status < 500) {
    const message =
      withStatus.type === 'entity.too.large' ? 'request body too large' : 'malformed request body';
    return {
      status: withStatus.status,
      body: errorBody(CODES[withStatus.status] ?? 'INVALID_REQUEST', message),
    };
  }
  return { status: 500, body: errorBody('INTERNAL_ERROR', 'internal error') };
}

@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiErrorFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const { status, body } = errorResponse(exception);
    // An unavailable store is an expected condition, not a bug: one line, no stack.
    if (status === 503) this.logger.warn(`${body.errors[0].code}: ${(exception as Error).message}`);
    else if (status >= 500)
      this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    if (!response.headersSent) response.status(status).json(body);
  }
}
