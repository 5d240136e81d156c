// The README's start command, run as a new user would: `npm start` on a fresh data directory
// serves /_ping 200, says where it listens and how to log in, and keeps its cluster across restarts.
import { freePort } from '@orca/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { httpsJson, httpsRequest } from '../apps/agent/src/https-json.js';

const root = resolve(process.cwd());

function start(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  up: Promise<void>;
} {
  const child = spawn('npm', ['start', '--silent'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const up = new Promise<void>((resolveUp, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('stop with Ctrl-C')) resolveUp();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
  });
  return { child, output: () => output, up };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGINT');
  return exited;
}

describe('npm start', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'orca-start-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('starts orca with no setup, prints the admin password once, and keeps the cluster across restarts', async () => {
    const port = await freePort();
    const env = {
      ORCA_PORT: String(port),
      ORCA_DATA_DIR: dataDir,
      ORCA_ENGINE: join(dataDir, 'no-engine.sock'),
      ORCA_ADMIN_PASSWORD: '',
      // Kubernetes has its own test (kube.e2e-spec.ts); here its fixed ports would clash.
      ORCA_KUBERNETES: 'false',
    };
    const first = start(env);
    try {
      await first.up;
      const url = `https://127.0.0.1:${port}`;
      expect(first.output()).toContain(url);
      const password = /generated password: (\S+)/.exec(first.output())?.[1];
      expect(password).toBeDefined();
      expect(await httpsRequest('GET', `${url}/_ping`, { insecure: true })).toEqual({
        status: 200,
        text: 'OK',
      });
      const version = await httpsJson<{ Version: string }>('GET', `${url}/version`, { insecure: true });
      expect(version.Version.startsWith('ucp/')).toBe(true);
      // The admin can log in with the printed password and sees the local node.
      const basic = Buffer.from(`admin:${password}`).toString('base64');
      const nodes = await httpsJson<{ role: string; status: string }[]>('GET', `${url}/api/orca/v1/nodes`, {
        insecure: true,
        basic,
      });
      expect(nodes).toEqual([expect.objectContaining({ role: 'swarm-manager', status: 'Ready' })]);
      // CA material is kept under the data directory, the KEK readable by its owner only.
      expect(existsSync(join(dataDir, 'kek'))).toBe(true);
      expect(statSync(join(dataDir, 'kek')).mode & 0o077).toBe(0);
    } finally {
      expect(await stop(first.child)).toBe(0);
    }

    const second = start(env);
    try {
      await second.up;
      expect(second.output()).not.toContain('generated password');
      const bundle = await httpsRequest('GET', `https://127.0.0.1:${port}/ca`, { insecure: true });
      expect(bundle.text).toContain('BEGIN CERTIFICATE');
    } finally {
      await stop(second.child);
    }
  }, 180_000);

  it('refuses a bad setting with a message that names it', async () => {
    const bad = start({ ORCA_PORT: 'not-a-port', ORCA_DATA_DIR: dataDir });
    await expect(bad.up).rejects.toThrow(/ORCA_PORT/);
  }, 120_000);
});
