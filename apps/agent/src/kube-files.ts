// A manager's Kubernetes files: fetched from a manager over mutual TLS (the certificates and keys
// orca issued for this node's components), rendered by libs/cluster's kubeNodeFiles into the
// node's state directory (`<state>/kube`, which is also where the components see it: the
// ucp-node-certs volume in containers, the same path for processes), and written only when they
// changed, each atomically.
import { kubeFilePaths, kubeNodeFiles, type KubeNodeBundle } from '@orca/cluster';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The directory the Kubernetes files go to, under the node's state directory. */
export function kubeDir(stateDir: string): string {
  return join(stateDir, 'kube');
}

/** Writes the bundle's files; returns how many changed (0: the node already had them). */
export function writeKubeFiles(stateDir: string, bundle: KubeNodeBundle): number {
  const dir = kubeDir(stateDir);
  mkdirSync(join(dir, 'generated'), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  let changed = 0;
  for (const file of kubeNodeFiles(bundle, dir)) {
    mkdirSync(dirname(file.path), { recursive: true, mode: 0o700 });
    let current: string | undefined;
    try {
      current = readFileSync(file.path, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === file.content) continue;
    const temp = `${file.path}.tmp-${process.pid}`;
    writeFileSync(temp, file.content, { mode: file.mode });
    renameSync(temp, file.path);
    changed++;
  }
  return changed;
}

/** True when the last file `writeKubeFiles` writes is there (each file is written atomically). */
export function kubeFilesPresent(stateDir: string): boolean {
  return existsSync(kubeFilePaths(kubeDir(stateDir)).admissionConfig);
}
