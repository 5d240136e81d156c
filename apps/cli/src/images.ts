// The images install runs, built locally from deploy/ by scripts/build-images.sh (nothing can be
// pulled here). The script is idempotent: tags are hashes of their inputs, existing ones are kept.
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

export async function ensureImages(
  engineSocket: string,
  given: { orca?: string; etcd?: string },
  log: (line: string) => void,
): Promise<{ orca: string; etcd: string }> {
  if (given.orca && given.etcd) return { orca: given.orca, etcd: given.etcd };
  log('Building orca images from deploy/ (cached when unchanged)');
  const output = await new Promise<string>((resolveOutput, reject) => {
    execFile(
      'bash',
      [join(root, 'scripts', 'build-images.sh'), 'etcd', 'orca'],
      { env: { ...process.env, DOCKER_HOST: `unix://${engineSocket}` }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`image build failed: ${stderr.slice(-2000)}`)) : resolveOutput(stdout),
    );
  });
  const refs = Object.fromEntries(
    output
      .split('\n')
      .map((line) => line.trim().split('='))
      .filter((parts) => parts.length === 2),
  ) as Record<string, string>;
  if (!refs.orca || !refs.etcd) throw new Error(`image build printed no refs: ${output}`);
  return { orca: given.orca ?? refs.orca, etcd: given.etcd ?? refs.etcd };
}
