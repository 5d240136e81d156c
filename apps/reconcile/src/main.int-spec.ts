import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImages, startDockerd, type Dockerd } from '@orca/testing';
import { runReconcile, type ReconcileIo } from './main.js';

describe('ucp-reconcile --runtime docker', () => {
  let daemon: Dockerd;
  let dir: string;

  beforeAll(async () => {
    daemon = await startDockerd({ index: 1 });
    dir = mkdtempSync(join(tmpdir(), 'orca-reconcile-'));
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('converges the node, exits 0, and exits 0 again without changes', async () => {
    const { busybox } = await buildImages(daemon, ['busybox']);
    const desired = join(dir, 'desired.json');
    writeFileSync(
      desired,
      JSON.stringify([{ name: 'ucp-proxy', image: busybox, command: ['sleep', '1000'] }]),
    );
    const out: string[] = [];
    const io: ReconcileIo = {
      stdout: (l) => out.push(l),
      stderr: (l) => out.push(l),
      readStdin: async () => '',
    };
    const args = ['--node', 'n1', '--desired', desired, '--runtime', 'docker', '--engine', daemon.dockerHost];
    expect(await runReconcile(args, io)).toBe(0);
    expect(out).toEqual([
      'Reconciling state of component ucp-proxy',
      'successfully reconciled state of ucp-proxy component',
      'Completed state reconciliation, system is ready.',
    ]);
    const [first] = await daemon.engine.listContainers({
      labels: { 'com.docker.ucp.orca.component': 'ucp-proxy' },
    });
    expect(await runReconcile(args, io)).toBe(0);
    const [second] = await daemon.engine.listContainers({
      labels: { 'com.docker.ucp.orca.component': 'ucp-proxy' },
    });
    expect(second.id).toBe(first.id);
    expect(first.names).toEqual(['ucp-proxy']);
  }, 90_000);
});
