import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function resolve(specifier, context, next) {
  const match = /^@orca\/([a-z0-9-]+)$/.exec(specifier);
  if (match) {
    return next(pathToFileURL(join(root, 'dist', 'libs', match[1], 'src', 'index.js')).href, context);
  }
  return next(specifier, context);
}
