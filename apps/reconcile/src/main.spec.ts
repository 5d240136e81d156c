import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessRuntime } from '@orca/reconcile';
import { runReconcile, type ReconcileIo } from './main.js';

function capture(stdin = ''): ReconcileIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l), readStdin: async () => stdin };
}

describe('ucp-reconcile', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'orca-reconcile-'))));
  afterEach(async () => {
    const runtime = new ProcessRuntime({ stateDir: join(dir, 'state') });
    for (const c of await runtime.list()) await runtime.remove(c.id);
    rmSync(dir, { recursive: true, force: true });
  });

  it('converges a node with the process runtime, and a second run only confirms', async () => {
    const desired = join(dir, 'desired.json');
    writeFileSync(
      desired,
      JSON.stringify([{ name: 'ucp-proxy', image: 'process', command: ['sleep', '30'] }]),
    );
    const args = [
      '--node',
      'n1',
      '--desired',
      desired,
      '--runtime',
      'process',
      '--state-dir',
      join(dir, 'state'),
    ];
    const io = capture();
    expect(await runReconcile(args, io)).toBe(0);
    expect(io.out).toEqual([
      'Reconciling state of component ucp-proxy',
      'successfully reconciled state of ucp-proxy component',
      'Completed state reconciliation, system is ready.',
    ]);
    const again = capture();
    expect(await runReconcile(args, again)).toBe(0);
    const [running] = await new ProcessRuntime({ stateDir: join(dir, 'state') }).list();
    expect(running).toMatchObject({ name: 'ucp-proxy', nodeId: 'n1', running: true });
  });

  it('reads stdin and exits 1 with a report when a component cannot start', async () => {
    const io = capture(
      JSON.stringify({ components: [{ name: 'broken', image: 'process', command: ['/nonexistent/x'] }] }),
    );
    expect(
      await runReconcile(['--node', 'n1', '--runtime', 'process', '--state-dir', join(dir, 'state')], io),
    ).toBe(1);
    expect(io.out[0]).toBe('Reconciling state of component broken');
    expect(io.err[0]).toBe('ucp-reconcile: 1 component(s) did not converge on node n1:');
    expect(io.err[1]).toMatch(/^ {2}broken: .*ENOENT/);
  });

  it('rejects bad arguments and bad desired state readably', async () => {
    const noNode = capture('[]');
    expect(await runReconcile(['--runtime', 'process'], noNode)).toBe(1);
    expect(noNode.err[0]).toContain('--node is required');
    const badJson = capture('{');
    expect(await runReconcile(['--node', 'n', '--runtime', 'process', '--state-dir', dir], badJson)).toBe(1);
    expect(badJson.err[0]).toContain('desired state is not JSON');
    const badRuntime = capture('[]');
    expect(await runReconcile(['--node', 'n', '--runtime', 'podman'], badRuntime)).toBe(1);
    expect(badRuntime.err[0]).toContain('unknown runtime "podman"');
    const unknownFlag = capture('[]');
    expect(await runReconcile(['--frobnicate'], unknownFlag)).toBe(1);
  });
});
