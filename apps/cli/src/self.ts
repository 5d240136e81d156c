// How to start this same orca binary again as a child process (the process runtime uses it).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function orcaCommand(): string[] {
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const root = resolve(dirname(main), '..', '..', '..', '..');
  return [process.execPath, '--enable-source-maps', '--import', join(root, 'scripts', 'register.mjs'), main];
}
