// A manager's Kubernetes files: fetched from a manager over mutual TLS (the certificates and keys
// orca issued for this node's components), rendered by libs/cluster's kubeNodeFiles into the
// node's state directory (`<state>/kube`, which is also where the components see it: the
// ucp-node-certs volume in containers, the same path for processes), and written only when they
// changed, each atomically. A component restarts when a file it reads changed: its spec carries
// a hash of those files (withKubeInputs), so the reconciler sees a different spec.
import {
  KUBE_COMPONENT_INPUTS,
  KUBE_INPUTS_LABEL,
  kubeFilePaths,
  kubeNodeFiles,
  type KubeNodeBundle,
} from '@orca/cluster';
import type { ComponentSpec } from '@orca/reconcile';
import { createHash } from 'node:crypto';
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

/** A hash of what the component reads at start (undefined for components without such files). */
export function kubeInputsHash(stateDir: string, component: string): string | undefined {
  const inputs = (
    KUBE_COMPONENT_INPUTS as Record<
      string,
      (typeof KUBE_COMPONENT_INPUTS)[keyof typeof KUBE_COMPONENT_INPUTS]
    >
  )[component];
  if (!inputs) return undefined;
  const paths = kubeFilePaths(kubeDir(stateDir));
  const files = inputs.files.map((name) => paths[name]);
  // The node certificate (renewed by the agent) is what the apiserver talks to ucp-kv with.
  if (inputs.nodeCertificate)
    files.push(join(stateDir, 'cert.pem'), join(stateDir, 'key.pem'), join(stateDir, 'ca.pem'));
  const hash = createHash('sha256');
  for (const file of files) {
    let content = '';
    try {
      content = readFileSync(file, 'utf8');
    } catch {
      // missing: hashed as empty, so its arrival is a change too
    }
    hash.update(`${file}\0${content}\0`);
  }
  return hash.digest('hex').slice(0, 32);
}

/** The desired specs as this node runs them: Kubernetes components labelled with their inputs' hash. */
export function withKubeInputs(stateDir: string, specs: readonly ComponentSpec[]): ComponentSpec[] {
  return specs.map((spec) => {
    const hash = kubeInputsHash(stateDir, spec.name);
    return hash ? { ...spec, labels: { ...spec.labels, [KUBE_INPUTS_LABEL]: hash } } : spec;
  });
}
