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
  options: { kube?: boolean } = {},
): Promise<{ orca: string; etcd: string; kube?: string }> {
  if (given.orca && given.etcd && !options.kube) return { orca: given.orca, etcd: given.etcd };
  log('Building orca images from deploy/ (cached when unchanged)');
  const output = await new Promise<string>((resolveOutput, reject) => {
    execFile(
      'bash',
      // kube: the Kubernetes components' image, from the binaries scripts/kube-binaries.mjs built.
      [join(root, 'scripts', 'build-images.sh'), 'etcd', 'orca', ...(options.kube ? ['kube'] : [])],
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
  if (options.kube && !refs.kube) throw new Error(`image build printed no kube ref: ${output}`);
  return { orca: given.orca ?? refs.orca, etcd: given.etcd ?? refs.etcd, kube: refs.kube };
}
