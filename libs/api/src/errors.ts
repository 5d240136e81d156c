// UCP's error body: {"errors":[{"code","message"}]} (ucp-api.md §1.5; clients also accept a single object).
export interface ApiErrorDetail {
  code: string;
  message: string;
  detail?: unknown;
}

export interface ApiErrorBody {
  errors: ApiErrorDetail[];
}

export function errorBody(code: string, message: string, detail?: unknown): ApiErrorBody {
  return { errors: [detail === undefined ? { code, message } : { code, message, detail }] };
}

/** An error that carries its HTTP status and UCP error code to the edge. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ApiErrorBody {
    return errorBody(this.code, this.message, this.detail);
  }
}
