// A small orca cluster for end-to-end tests: real dockerd in swarm mode, ucp-controller as the real
// `orca controller` process (embedded store), and `orca agent` per engine (process runtime), each of
// which joins with a join token and runs its node's ucp-proxy. Needs `npm run build` (dist/).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import JSZip from 'jszip';
import { buildImages, startSwarm, type DockerSwarm } from './docker.js';
import { freePort } from './net.js';

export interface OrcaClusterOptions {
  /** Engines in the swarm: the first is the manager, the rest workers (default 3). */
  engines?: number;
  /** Index of the first engine: addresses are 127.0.0.<index+1> (default 20, away from other suites). */
  firstIndex?: number;
  adminPassword?: string;
  /**
   * Whether the controller reaches the manager's engine on its socket (ORCA_LOCAL_ENGINE), as
   * `orca up` and installed managers do (default true); false: through its ucp-proxy like the rest.
   */
  localEngine?: boolean;
}

export interface OrcaCluster {
  /** https://<manager address>:<port> */
  url: string;
  host: string;
  port: number;
  swarm: DockerSwarm;
  /** Locally built images present on every engine, e.g. { busybox: 'orca/busybox:<hash>' }. */
  images: Record<string, string>;
  adminPassword: string;
  /** An HTTPS call to the controller (certificate not verified): status and body text. */
  api(
    method: string,
    path: string,
    options?: { user?: string; password?: string; token?: string; body?: unknown },
  ): Promise<{ status: number; text: string; body: Buffer }>;
  /** Downloads a user's client bundle through the API and unzips it into a new directory. */
  bundle(user: string, password: string): Promise<string>;
  /** Stops agents, their ucp-proxy processes, the controller and the engines; removes the dirs. */
  stop(): Promise<void>;
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const live = new Set<ChildProcess>();
let hookInstalled = false;

function orcaProcess(args: string[], env: Record<string, string>, logFile: string): ChildProcess {
  const root = repoRoot();
  const main = join(root, 'dist', 'apps', 'cli', 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  if (!hookInstalled) {
    hookInstalled = true;
    process.on('exit', () => {
      for (const child of live) child.kill('SIGKILL');
    });
  }
  // Extra node flags for the controller (e.g. --cpu-prof when profiling a benchmark).
  const nodeArgs =
    args[0] === 'controller' ? (process.env.ORCA_CONTROLLER_NODE_ARGS ?? '').split(' ').filter(Boolean) : [];
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', join(root, 'scripts', 'register.mjs'), main, ...args],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  const append = (chunk: Buffer) => {
    log += chunk.toString();
    writeFileSync(logFile, log);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, delay(10_000)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await Promise.race([exited, delay(5_000)]);
  }
}

/** Kills the process groups the process runtime started (they outlive their agent by design). */
function killComponents(stateDir: string): void {
  const dir = join(stateDir, 'processes');
  if (!existsSync(dir)) return;
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json')) continue;
    try {
      const { pid } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { pid?: number };
      if (typeof pid === 'number' && pid > 1) process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone, or not a state file
    }
  }
}

function httpsCall(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers, rejectUnauthorized: false, timeout: 30_000, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buffer = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, text: buffer.toString('utf8'), body: buffer });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.end(body);
  });
}

function sh(command: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('sh', ['-c', command], { maxBuffer: 16 * 1024 * 1024 }, (error, _out, stderr) =>
      error ? reject(new Error(`${command}: ${stderr || error.message}`)) : resolve(),
    ),
  );
}

export async function startOrcaCluster(options: OrcaClusterOptions = {}): Promise<OrcaCluster> {
  const engines = options.engines ?? 3;
  const adminPassword = options.adminPassword ?? 'orca-admin-pass';
  const base = mkdtempSync(join(tmpdir(), 'orca-cluster-'));
  const children: ChildProcess[] = [];
  const stateDirs: string[] = [];
  let swarm: DockerSwarm | undefined;
  const stop = async () => {
    for (const child of children.slice(1).reverse()) await stopProcess(child);
    for (const dir of stateDirs) killComponents(dir);
    if (children[0]) await stopProcess(children[0]);
    await swarm?.stop();
    rmSync(base, { recursive: true, force: true });
  };
  try {
    swarm = await startSwarm(engines, { firstIndex: options.firstIndex ?? 20, baseDir: base });
    const images = await buildImages(swarm.manager, ['busybox']);
    // Nothing can be pulled here: every engine gets the images as an offline install pre-loads them.
    for (const worker of swarm.daemons.slice(1)) {
      await sh(
        `docker -H ${swarm.manager.dockerHost} save ${Object.values(images).join(' ')} | docker -H ${worker.dockerHost} load`,
      );
    }
    const host = swarm.manager.address;
    const port = await freePort();
    const url = `https://${host}:${port}`;
    const dataDir = join(base, 'controller');
    mkdirSync(dataDir);
    children.push(
      orcaProcess(
        ['controller'],
        {
          ORCA_HOST: host,
          ORCA_PORT: String(port),
          ORCA_DATA_DIR: dataDir,
          ORCA_ADMIN_PASSWORD: adminPassword,
          // The controller runs on the manager node: its engine is the local one.
          ORCA_LOCAL_ENGINE: options.localEngine === false ? '' : swarm.manager.socketPath,
        },
        join(base, 'controller.log'),
      ),
    );
    const basic = (user: string, password: string) =>
      `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const api: OrcaCluster['api'] = (method, path, o = {}) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      else headers.authorization = basic(o.user ?? 'admin', o.password ?? adminPassword);
      return httpsCall(
        `${url}${path}`,
        method,
        headers,
        o.body === undefined ? undefined : JSON.stringify(o.body),
      );
    };
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ping = await httpsCall(`${url}/_ping`, 'GET', {}).catch(() => undefined);
      if (ping?.status === 200) break;
      if (children[0].exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `the controller did not start:\n${readFileSync(join(base, 'controller.log'), 'utf8')}`,
        );
      }
      await delay(200);
    }
    const tokens = JSON.parse((await api('GET', '/api/orca/v1/jointokens')).text) as {
      Worker: string;
      Manager: string;
    };
    for (const [i, daemon] of swarm.daemons.entries()) {
      const state = join(base, `agent-${i}`);
      stateDirs.push(state);
      children.push(
        orcaProcess(
          [
            'agent',
            '--token',
            i === 0 ? tokens.Manager : tokens.Worker,
            '--manager',
            url,
            '--engine',
            daemon.socketPath,
            '--runtime',
            'process',
            '--state',
            state,
            '--address',
            daemon.address,
          ],
          {},
          join(base, `agent-${i}.log`),
        ),
      );
    }
    interface NodeRow {
      status: string;
      components: { name: string; state: string }[];
    }
    const ready = Date.now() + 90_000;
    for (;;) {
      const answer = await api('GET', '/api/orca/v1/nodes').catch(() => undefined);
      const rows = answer?.status === 200 ? (JSON.parse(answer.text) as NodeRow[]) : [];
      const up = rows.filter(
        (n) =>
          n.status === 'Ready' && n.components.some((c) => c.name === 'ucp-proxy' && c.state === 'running'),
      );
      if (up.length >= engines) break;
      if (Date.now() > ready) {
        throw new Error(`only ${up.length} of ${engines} nodes came up: ${answer?.text ?? 'no answer'}`);
      }
      await delay(500);
    }
    const bundle = async (user: string, password: string) => {
      const answer = await api('GET', '/api/clientbundle', { user, password });
      if (answer.status !== 200) throw new Error(`bundle for ${user}: ${answer.status} ${answer.text}`);
      const dir = mkdtempSync(join(base, `bundle-${user}-`));
      const zip = await JSZip.loadAsync(answer.body);
      for (const [name, entry] of Object.entries(zip.files)) {
        if (entry.dir) continue;
        const target = join(dir, name);
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, await entry.async('nodebuffer'), {
          mode: name.endsWith('key.pem') ? 0o600 : 0o644,
        });
      }
      return dir;
    };
    return { url, host, port, swarm, images, adminPassword, api, bundle, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
