// A manager's Kubernetes components restart when a file they read changes, and only then: the
// agent's files (writeKubeFiles) and the real process runtime under ucp-reconcile's reconcileNode,
// with stand-in commands for the Kubernetes binaries.
import type { KubeNodeBundle } from '@orca/cluster';
import { ProcessRuntime, reconcileNode, type ComponentSpec } from '@orca/reconcile';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeInputsHash, withKubeInputs, writeKubeFiles } from './kube-files.js';

const pair = (name: string, generation: number) => ({
  certPem: `-----BEGIN CERTIFICATE-----\n${name}-${generation}\n-----END CERTIFICATE-----\n`,
  keyPem: `-----BEGIN PRIVATE KEY-----\n${name}-${generation}\n-----END PRIVATE KEY-----\n`,
});

function bundle(generations: Partial<Record<string, number>> = {}): KubeNodeBundle {
  const g = (name: string) => generations[name] ?? 1;
  return {
    material: {
      caPem: pair('ca', g('ca')).certPem,
      apiserver: pair('apiserver', g('apiserver')),
      serviceAccount: { publicKeyPem: 'sa-public', privateKeyPem: 'sa-private' },
      controllerManager: pair('controller-manager', g('controllerManager')),
      scheduler: pair('scheduler', g('scheduler')),
      kwok: pair('kwok', g('kwok')),
      webhookClient: pair('webhook', g('webhookClient')),
    },
    apiserverUrl: 'https://127.0.0.1:12388',
    controllerUrl: 'https://127.0.0.1:8443',
  };
}

describe('Kubernetes component files', () => {
  let stateDir: string;
  let runtime: ProcessRuntime;
  const nodeId = 'node-kube-files';
  // The real components' names, with a long sleep standing in for each binary.
  const desired: ComponentSpec[] = ['ucp-kube-apiserver', 'ucp-kube-scheduler', 'ucp-kwok', 'ucp-other'].map(
    (name) => ({
      name,
      image: 'process',
      command: ['sleep', '300'],
      env: {},
      mounts: [],
      ports: [],
      network: 'host',
      labels: {},
      restartPolicy: 'always',
    }),
  );
  const reconcile = async () => {
    const result = await reconcileNode({ nodeId, desired: withKubeInputs(stateDir, desired), runtime });
    expect(result.converged).toBe(true);
    return Object.fromEntries(result.actions.map((a) => [a.component, a.action]));
  };

  beforeAll(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'orca-kube-files-'));
    runtime = new ProcessRuntime({ stateDir: join(stateDir, 'processes'), stopTimeoutMs: 2000 });
    writeFileSync(join(stateDir, 'cert.pem'), pair('node', 1).certPem);
    writeFileSync(join(stateDir, 'key.pem'), pair('node', 1).keyPem);
    writeFileSync(join(stateDir, 'ca.pem'), pair('ca', 1).certPem);
  });

  afterAll(async () => {
    for (const component of await runtime.list()) await runtime.remove(component.id);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('restarts a component when a file it reads changes, and leaves the others running', async () => {
    expect(writeKubeFiles(stateDir, bundle())).toBeGreaterThan(0);
    expect(await reconcile()).toEqual({
      'ucp-kube-apiserver': 'created',
      'ucp-kube-scheduler': 'created',
      'ucp-kwok': 'created',
      'ucp-other': 'created',
    });
    // Same files: nothing restarts (level-triggered, no memory of the previous write).
    expect(writeKubeFiles(stateDir, bundle())).toBe(0);
    expect(Object.values(await reconcile()).every((a) => a === 'unchanged')).toBe(true);

    // A renewed scheduler certificate: its kubeconfig changes, so only the scheduler restarts.
    expect(writeKubeFiles(stateDir, bundle({ scheduler: 2 }))).toBe(1);
    expect(await reconcile()).toEqual({
      'ucp-kube-apiserver': 'unchanged',
      'ucp-kube-scheduler': 'replaced',
      'ucp-kwok': 'unchanged',
      'ucp-other': 'unchanged',
    });
    const running = await runtime.list();
    expect(
      running
        .filter((c) => c.running)
        .map((c) => c.name)
        .sort(),
    ).toEqual(['ucp-kube-apiserver', 'ucp-kube-scheduler', 'ucp-kwok', 'ucp-other']);
  });

  it('restarts the apiserver when the node certificate it reaches ucp-kv with is renewed', async () => {
    const before = kubeInputsHash(stateDir, 'ucp-kube-apiserver');
    writeFileSync(join(stateDir, 'cert.pem'), pair('node', 2).certPem);
    expect(kubeInputsHash(stateDir, 'ucp-kube-apiserver')).not.toBe(before);
    expect(await reconcile()).toEqual({
      'ucp-kube-apiserver': 'replaced',
      'ucp-kube-scheduler': 'unchanged',
      'ucp-kwok': 'unchanged',
      'ucp-other': 'unchanged',
    });
    // A new cluster CA bundle reaches every component that trusts it.
    writeKubeFiles(stateDir, bundle({ scheduler: 2, ca: 2 }));
    const actions = await reconcile();
    expect(actions['ucp-kube-apiserver']).toBe('replaced');
    expect(actions['ucp-kube-scheduler']).toBe('replaced');
    expect(actions['ucp-other']).toBe('unchanged');
    expect(kubeInputsHash(stateDir, 'ucp-other')).toBeUndefined();
  });
});
