// PATCH /accounts/: eNZi's bulk account operations (forms.BulkOperations -> responses.BulkResults).
// The Swagger defines only the envelope ({op, ref, value}); the op names are orca's reading of the
// UI's bulk actions: activate, deactivate, promote, demote, delete, and update (value = the JSON of
// forms.UpdateAccount). Each operation succeeds or fails on its own; results keep request order.
import { ApiError } from '@orca/api';
import type { Directory } from './directory.js';

export const BULK_OPS = ['activate', 'deactivate', 'promote', 'demote', 'delete', 'update'] as const;
const MAX_OPERATIONS = 1000;

export interface BulkResult {
  op: string;
  ref?: string;
  success: boolean;
  error?: { code: string; message: string };
}

const bad = (message: string) => new ApiError(400, 'INVALID_REQUEST', message);

/** The whole request is refused (400) only when its shape is wrong; otherwise every op gets a result. */
export function parseBulkOperations(body: unknown): { op: string; ref?: string; value?: string }[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('the request body must be a JSON object');
  const operations = (body as { operations?: unknown }).operations;
  if (!Array.isArray(operations)) throw bad('operations must be an array');
  if (operations.length > MAX_OPERATIONS) throw bad(`at most ${MAX_OPERATIONS} operations per request`);
  return operations.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw bad(`operations[${i}] must be an object`);
    const { op, ref, value } = item as Record<string, unknown>;
    if (typeof op !== 'string') throw bad(`operations[${i}].op must be a string`);
    if (ref !== undefined && typeof ref !== 'string') throw bad(`operations[${i}].ref must be a string`);
    if (value !== undefined && typeof value !== 'string')
      throw bad(`operations[${i}].value must be a string`);
    return { op, ref, value };
  });
}

/**
 * Runs the operations in order. `ended` lists the users whose sessions must end (deactivated or
 * deleted), for the caller to close.
 */
export async function bulkAccountOperations(
  directory: Directory,
  body: unknown,
): Promise<{ results: BulkResult[]; ended: string[] }> {
  const operations = parseBulkOperations(body);
  const results: BulkResult[] = [];
  const ended: string[] = [];
  for (const { op, ref, value } of operations) {
    const result: BulkResult = { op, ...(ref !== undefined ? { ref } : {}), success: false };
    try {
      if (!(BULK_OPS as readonly string[]).includes(op))
        throw bad(`unknown operation "${op}"; use one of ${BULK_OPS.join(', ')}`);
      if (!ref) throw bad('ref (an account name or id) is required');
      if (op === 'delete') {
        const record = await directory.record(ref);
        await directory.remove(ref);
        ended.push(record.name);
      } else {
        let form: unknown;
        if (op === 'update') {
          try {
            form = JSON.parse(value ?? '');
          } catch {
            throw bad('value must be the JSON of an account update');
          }
        } else {
          form =
            op === 'activate' || op === 'deactivate'
              ? { isActive: op === 'activate' }
              : { isAdmin: op === 'promote' };
        }
        const account = await directory.update(ref, form);
        if (!account.isOrg && !account.isActive) ended.push(account.name);
      }
      result.success = true;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      result.error = { code: error.code, message: error.message };
    }
    results.push(result);
  }
  return { results, ended };
}
