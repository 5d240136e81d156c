// Checks orca's responses against the UCP and DTR Swagger 2.0 documents (specs/ at the repository
// root, copied from the published docs), so a wrong type or a missing required field fails a test.
import { Ajv, type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type SpecName = 'ucp-3.0' | 'dtr-2.5';

const FILES: Record<SpecName, string> = {
  'ucp-3.0': 'ucp-3.0-swagger.json',
  'dtr-2.5': 'dtr-2.5-swagger.json',
};

interface SwaggerDoc {
  paths: Record<string, Record<string, { responses?: Record<string, { schema?: unknown }> }>>;
  definitions?: Record<string, unknown>;
}

function specsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  // From libs/api/src (sources) or dist/libs/api/src (built): the nearest parent with specs/.
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'specs');
    try {
      readFileSync(join(candidate, FILES['ucp-3.0']), { flag: 'r' });
      return candidate;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error('specs/ not found above libs/api');
}

const loaded = new Map<SpecName, { doc: SwaggerDoc; ajv: Ajv }>();

function load(name: SpecName) {
  const cached = loaded.get(name);
  if (cached) return cached;
  const doc = JSON.parse(readFileSync(join(specsDir(), FILES[name]), 'utf8')) as SwaggerDoc;
  // Swagger 2.0 schemas are JSON Schema draft 4 plus a few keywords of their own (example,
  // discriminator, x-*): validate the standard part and ignore the rest.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  // Draft 4's `id` (used in some definitions) is not a keyword Ajv 8 accepts.
  ajv.removeKeyword('id');
  ajv.addSchema({ definitions: doc.definitions ?? {} }, 'swagger');
  const entry = { doc, ajv };
  loaded.set(name, entry);
  return entry;
}

function rewriteRefs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rewriteRefs);
  if (schema && typeof schema === 'object') {
    return Object.fromEntries(
      Object.entries(schema as Record<string, unknown>).map(([key, value]) =>
        key === '$ref' && typeof value === 'string' && value.startsWith('#/definitions/')
          ? [key, `swagger${value}`]
          : [key, rewriteRefs(value)],
      ),
    );
  }
  return schema;
}

/** The validator for one documented response; throws when the spec does not document it. */
export function responseValidator(
  name: SpecName,
  method: string,
  path: string,
  status: number,
): ValidateFunction {
  const { doc, ajv } = load(name);
  const operation = doc.paths[path]?.[method.toLowerCase()];
  const response = operation?.responses?.[String(status)];
  if (!response) throw new Error(`${name} does not document ${method.toUpperCase()} ${path} -> ${status}`);
  return ajv.compile(rewriteRefs(response.schema ?? {}) as object);
}

/** Validates a response body; returns the list of problems (empty when it matches the spec). */
export function checkResponse(
  name: SpecName,
  method: string,
  path: string,
  status: number,
  body: unknown,
): string[] {
  const validate = responseValidator(name, method, path, status);
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
}
