/** A Docker Engine API failure, in our own terms: the HTTP status (0 when the engine was unreachable). */
export class EngineError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly operation: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'EngineError';
  }

  get notFound(): boolean {
    return this.statusCode === 404;
  }

  get conflict(): boolean {
    return this.statusCode === 409;
  }

  /** True when the engine could not be reached at all (socket missing, connection refused, TLS failure). */
  get unreachable(): boolean {
    return this.statusCode === 0;
  }
}

interface ModemError {
  statusCode?: number;
  reason?: string;
  json?: { message?: string } | string | null;
  code?: string;
  message?: string;
}

/** Maps what docker-modem throws (HTTP errors carry statusCode and json.message) to an EngineError. */
export function toEngineError(operation: string, err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const e = (err ?? {}) as ModemError;
  const status = typeof e.statusCode === 'number' ? e.statusCode : 0;
  let detail: string | undefined;
  if (e.json && typeof e.json === 'object' && typeof e.json.message === 'string') detail = e.json.message;
  else if (typeof e.json === 'string' && e.json.trim() !== '') detail = e.json.trim();
  if (!detail) detail = e.reason ?? e.message ?? String(err);
  const prefix = status === 0 && e.code ? `${e.code}: ` : '';
  return new EngineError(status, `${operation}: ${prefix}${detail}`, operation, err);
}
