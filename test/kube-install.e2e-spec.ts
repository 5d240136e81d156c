// The docker runtime's Kubernetes: `orca install --kubernetes` on a real engine builds the
// orca/kube image from the cached binaries, and the manager's ucp-agent writes the Kubernetes files
// into the ucp-node-certs volume and starts ucp-kube-apiserver (storing in the manager's ucp-kv),
// -controller-manager, -scheduler and ucp-kwok as containers. The installed kubectl with the admin
// bundle sees the kwok node Ready and runs a deployment.
import {
  basicAuth,
  buildImages,
  freePort,
  httpsCall,
  runKubectl,
  startSwarm,
  until,
  type DockerSwarm,
} from '@orca/testing';
import JSZip from 'jszip';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(process.cwd());
const ADMIN_PASSWORD = 'orca-admin-pass';

function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      command,
      args,
      { cwd: root, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
      (error, stdout, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The installed kubectl with only this kubeconfig. */
const kubectl = (kubeconfig: string, args: string[]) => runKubectl(kubeconfig, args);

describe('orca install --kubernetes (docker runtime)', () => {
  let baseDir: string;
  let swarm: DockerSwarm | undefined;
  let url: string;
  let kubeconfig: string;
  const docker = (args: string[]) => run('docker', ['-H', swarm!.manager.dockerHost, ...args]);

  beforeAll(async () => {
    baseDir = mkdtempSync(join(tmpdir(), 'orca-kube-install-'));
    // Engines on 127.0.0.61: apart from the other suites' addresses, so the fixed UCP ports are free.
    swarm = await startSwarm(1, { baseDir, firstIndex: 60 });
    const images = await buildImages(swarm.manager, ['busybox', 'etcd', 'orca']);
    const port = await freePort();
    url = `https://${swarm.manager.address}:${port}`;
    const install = await run(
      process.execPath,
      [
        '--import',
        join(root, 'scripts', 'register.mjs'),
        join(root, 'dist', 'apps', 'cli', 'src', 'main.js'),
        'install',
        '--engine',
        swarm.manager.socketPath,
        '--address',
        swarm.manager.address,
        '--controller-port',
        String(port),
        '--engine-dir',
        baseDir,
        '--orca-image',
        images.orca,
        '--etcd-image',
        images.etcd,
        '--kubernetes',
      ],
      { ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD },
    );
    if (install.code !== 0)
      throw new Error(`install failed (${install.code}):\n${install.stdout}\n${install.stderr}`);
    const bundle = await httpsCall(url, '/api/clientbundle', {
      method: 'POST',
      auth: basicAuth('admin', ADMIN_PASSWORD),
    });
    expect(bundle.status).toBe(200);
    kubeconfig = join(baseDir, 'kube.yml');
    writeFileSync(kubeconfig, await (await JSZip.loadAsync(bundle.body)).file('kube.yml')!.async('string'));
  }, 600_000);

  afterAll(async () => {
    await swarm?.stop();
    rmSync(baseDir, { recursive: true, force: true });
  }, 120_000);

  it('runs the control plane as containers that kubectl reaches through the 6443 front door', async () => {
    const nodes = await until(
      'the kwok node Ready',
      120_000,
      async () => {
        const res = await kubectl(kubeconfig, ['get', 'nodes', '--no-headers']);
        return /\sReady\s/.test(res.stdout) ? res.stdout : undefined;
      },
      1000,
    );
    expect(nodes).toMatch(/\sReady\s+master\s/);
    const containers = (await docker(['ps', '--format', '{{.Names}} {{.Image}}'])).stdout;
    for (const name of [
      'ucp-kube-apiserver',
      'ucp-kube-controller-manager',
      'ucp-kube-scheduler',
      'ucp-kwok',
    ])
      expect(containers).toMatch(new RegExp(`^${name} orca/kube:v1\\.33\\.13-`, 'm'));
    // No second etcd: the apiserver stores in the manager's ucp-kv.
    expect(containers.split('\n').filter((line) => line.startsWith('ucp-kv '))).toHaveLength(1);

    expect(
      (
        await kubectl(kubeconfig, [
          'create',
          'deployment',
          'web',
          '--image=registry.invalid/web:1',
          '--replicas=2',
        ])
      ).code,
    ).toBe(0);
    const phases = await until(
      'two Running pods',
      60_000,
      async () => {
        const res = await kubectl(kubeconfig, ['get', 'pods', '-o', 'jsonpath={.items[*].status.phase}']);
        return res.stdout === 'Running Running' ? res.stdout : undefined;
      },
      1000,
    );
    expect(phases).toBe('Running Running');
  }, 240_000);
});
