// Real Docker Engines for tests: each dockerd on its own temp dirs and socket, no bridge, no iptables
// (DESIGN.md "Real components in tests"; toolchain.md). Swarms advertise 127.0.0.<index+1> only.
// Each daemon takes its bridge networks' subnets from its own /22 of 198.18.0.0/15 (RFC 2544's
// benchmarking range: nothing this machine talks to can be in it, unlike the private ranges of
// Docker's default pools, where the DNS server is). The Linux bridges of a killed daemon outlive
// it in the host's namespace; with one pool per index they are found and removed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '@orca/engine';

export interface DockerdOptions {
  /** 0..N: the daemon's swarm address is 127.0.0.<index+1>. */
  index: number;
  /** Seconds to wait for the API. Default 30. */
  startTimeoutSec?: number;
  /** Parent of the daemon's directory (default /tmp): a swarm's daemons can share one, so a
   *  single bind mount gives a container every engine socket (what ucp-agent's discovery uses). */
  baseDir?: string;
  /** CA certificates (PEM) the daemon trusts per registry `host:port`: written to
   *  /etc/docker/certs.d/<host:port>/ca.crt (dockerd has no flag for another place) and removed on stop(). */
  registryCas?: Record<string, string>;
}

export interface Dockerd {
  index: number;
  /** 127.0.0.<index+1>: what this daemon advertises in a swarm. */
  address: string;
  socketPath: string;
  /** `unix://<socketPath>`, for DOCKER_HOST. */
  dockerHost: string;
  dir: string;
  engine: Engine;
  /** Removes services and containers, leaves the swarm, kills the daemon, unmounts and deletes its dirs. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test run that dies without stop() must not leave daemons behind.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startDockerd(opts: DockerdOptions): Promise<Dockerd> {
  installExitHook();
  const address = `127.0.0.${opts.index + 1}`;
  const pool = addressPool(opts.index);
  removeBridgesLeftIn(pool);
  // Short path: the containerd socket lives under exec-root and unix socket paths are limited to 108 bytes.
  const dir = mkdtempSync(
    opts.baseDir ? join(opts.baseDir, `d${opts.index}-`) : `/tmp/orca-dockerd-${opts.index}-`,
  );
  const socketPath = join(dir, 'docker.sock');
  const certDirs = Object.entries(opts.registryCas ?? {}).map(([hostPort, pem]) => {
    const certDir = join('/etc/docker/certs.d', hostPort);
    mkdirSync(certDir, { recursive: true });
    writeFileSync(join(certDir, 'ca.crt'), pem);
    return certDir;
  });
  const log = createWriteStream(join(dir, 'dockerd.log'));
  const child = spawn(
    'dockerd',
    [
      '--host',
      `unix://${socketPath}`,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'docker.pid'),
      '--bridge=none',
      '--default-address-pool',
      `base=${pool.base},size=26`,
      '--iptables=false',
      '--ip-masq=false',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  live.add(child);
  let exited = false;
  child.once('exit', () => {
    exited = true;
    live.delete(child);
  });

  const engine = new Engine({ socketPath });
  let stopped = false;
  const daemon: Dockerd = {
    index: opts.index,
    address,
    socketPath,
    dockerHost: `unix://${socketPath}`,
    dir,
    engine,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await cleanUpEngine(engine).catch(() => undefined);
      await killDaemon(child, () => exited);
      killLeftovers(dir);
      removeBridgesLeftIn(pool);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
      for (const certDir of certDirs) rmSync(certDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + (opts.startTimeoutSec ?? 30) * 1000;
  for (;;) {
    if (exited) {
      const tail = safeRead(join(dir, 'dockerd.log')).split('\n').slice(-15).join('\n');
      await daemon.stop();
      throw new Error(`dockerd ${opts.index} exited during start:\n${tail}`);
    }
    if (existsSync(socketPath) && (await engine.ping().catch(() => false))) break;
    if (Date.now() > deadline) {
      await daemon.stop();
      throw new Error(`dockerd ${opts.index} did not answer within ${opts.startTimeoutSec ?? 30}s`);
    }
    await delay(100);
  }
  return daemon;
}

async function cleanUpEngine(engine: Engine): Promise<void> {
  const info = await engine.info();
  if (info.swarm.controlAvailable) {
    for (const s of await engine.listServices()) await engine.removeService(s.id).catch(() => undefined);
  }
  if (info.swarm.localNodeState !== 'inactive') await engine.swarmLeave(true).catch(() => undefined);
  for (const c of await engine.listContainers({ all: true })) {
    await engine.removeContainer(c.id, { force: true, volumes: true }).catch(() => undefined);
  }
}

async function killDaemon(child: ChildProcess, exited: () => boolean): Promise<void> {
  if (exited()) return;
  child.kill('SIGTERM');
  for (let i = 0; i < 150 && !exited(); i++) await delay(100);
  if (!exited()) {
    child.kill('SIGKILL');
    for (let i = 0; i < 50 && !exited(); i++) await delay(100);
  }
}

/** containerd and shims that outlived a killed dockerd: found by our unique dir in their argv, killed by pid. */
function killLeftovers(dir: string): void {
  for (const pid of processesWith((arg) => arg.includes(dir))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The pids of the processes with an argument that matches. */
function processesWith(matches: (arg: string) => boolean): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => safeRead(`/proc/${entry}/cmdline`).split('\0').some(matches))
    .map(Number);
}

interface AddressPool {
  /** CIDR, e.g. 198.18.4.0/22 */
  base: string;
  contains(address: string): boolean;
}

/** Index i's /22 of 198.18.0.0/15: sixteen /26 networks per daemon. */
function addressPool(index: number): AddressPool {
  if (!Number.isInteger(index) || index < 0 || index > 127)
    throw new Error(`dockerd index ${index} is not 0..127`);
  const first = ipv4ToNumber('198.18.0.0') + index * 1024;
  return {
    base: `${numberToIpv4(first)}/22`,
    contains: (address) => {
      const n = ipv4ToNumber(address);
      return n >= first && n < first + 1024;
    },
  };
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Deletes the bridges with an address in pool while no dockerd uses that pool (two tests may share an
 *  index when they never join a swarm). docker_gwbridge is left alone: every swarm daemon on the host
 *  shares it, whichever pool it came from. */
function removeBridgesLeftIn(pool: AddressPool): void {
  const flag = `base=${pool.base},`;
  const inUse = processesWith((arg) => arg.startsWith(flag)).length > 0;
  if (inUse) return;
  const listed = spawnSync('ip', ['-j', '-4', 'addr', 'show', 'type', 'bridge'], { encoding: 'utf8' });
  if (listed.status !== 0) return;
  const bridges = JSON.parse(listed.stdout || '[]') as { ifname: string; addr_info?: { local: string }[] }[];
  for (const bridge of bridges) {
    if (bridge.ifname === 'docker_gwbridge') continue;
    if ((bridge.addr_info ?? []).some((a) => pool.contains(a.local)))
      spawnSync('ip', ['link', 'delete', bridge.ifname], { stdio: 'ignore' });
  }
}

/** Unmounts (deepest first) whatever is still mounted under dir: overlay layers, netns, shm. */
function unmountUnder(dir: string): void {
  const points = safeRead('/proc/self/mountinfo')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const p of points) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export interface DockerSwarm {
  /** daemons[0] is the manager (127.0.0.1); the others are workers. */
  daemons: Dockerd[];
  manager: Dockerd;
  /** Node ids, in daemon order. */
  nodeIds: string[];
  stop(): Promise<void>;
}

export interface SwarmOptions {
  /** Index of the first daemon (default 0: 127.0.0.1). */
  firstIndex?: number;
  /** Directory to create every daemon's directory in (see DockerdOptions.baseDir). */
  baseDir?: string;
}

/** n daemons in one swarm: the first inits, the rest join as workers on their own loopback address. */
export async function startSwarm(n: number, opts: SwarmOptions = {}): Promise<DockerSwarm> {
  const first = opts.firstIndex ?? 0;
  const started = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => startDockerd({ index: first + i, baseDir: opts.baseDir })),
  );
  const daemons = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stopAll = async () => {
    // Workers first, then the manager that holds the services.
    for (const d of [...daemons].reverse()) await d.stop();
  };
  try {
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [manager, ...workers] = daemons;
    await manager.engine.swarmInit({
      advertiseAddr: manager.address,
      listenAddr: `${manager.address}:2377`,
      dataPathAddr: manager.address,
    });
    const { joinTokens } = await manager.engine.swarmInspect();
    for (const w of workers) {
      await w.engine.swarmJoin({
        remoteAddrs: [`${manager.address}:2377`],
        joinToken: joinTokens.worker,
        advertiseAddr: w.address,
        listenAddr: `${w.address}:2377`,
        dataPathAddr: w.address,
      });
    }
    const nodeIds: string[] = [];
    for (const d of daemons) nodeIds.push((await d.engine.info()).swarm.nodeId);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const nodes = await manager.engine.listNodes();
      if (nodes.filter((x) => x.state === 'ready').length >= n) break;
      if (Date.now() > deadline) throw new Error(`swarm: only ${nodes.length} of ${n} nodes ready`);
      await delay(200);
    }
    return { daemons, manager, nodeIds, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The repository root: the nearest parent with package.json (works from src/ and from dist/). */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
const repoRoot = findRepoRoot();

export type OrcaImage = 'busybox' | 'node-base' | 'etcd' | 'orca';

/**
 * Runs scripts/build-images.sh against the daemon (cached: rootfs tars on disk, images by content
 * hash) and returns the references, e.g. { busybox: 'orca/busybox:0e17...' }.
 */
export function buildImages(
  daemon: { dockerHost: string },
  images: OrcaImage[] = [],
): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, 'scripts', 'build-images.sh'), images, {
      env: { ...process.env, DOCKER_HOST: daemon.dockerHost },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`build-images.sh failed (${code ?? signal}):\n${stderr}${stdout}`));
        return;
      }
      const refs: Record<string, string> = {};
      for (const line of stdout.split('\n')) {
        const m = /^([a-z-]+)=(\S+)$/.exec(line.trim());
        if (m) refs[m[1]] = m[2];
      }
      resolve(refs);
    });
  });
}
