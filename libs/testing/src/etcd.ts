// Runs a real etcd (Debian's /usr/bin/etcd, 3.4) for tests: 1 or 3 members on loopback ports,
// each with its own temporary data dir, with kill/restart/pause/resume for fault tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export interface EtcdClusterOptions {
  members?: 1 | 3;
  /** Path of the etcd binary; default /usr/bin/etcd or $ORCA_ETCD_BIN. */
  binary?: string;
  /** How long to wait for the cluster to become healthy; default 20 s. */
  startTimeoutMs?: number;
}

export interface EtcdCluster {
  /** Client URLs, one per member, in member order (http://127.0.0.1:<port>). */
  readonly endpoints: string[];
  /** SIGKILL every member and remove the data dirs. */
  stop(): Promise<void>;
  /** SIGKILL one member (its data dir stays, so `restart` brings it back with its data). */
  kill(memberIndex: number): Promise<void>;
  /** Start a killed member again on the same ports and data dir, and wait until it is healthy. */
  restart(memberIndex: number): Promise<void>;
  /** SIGSTOP one member: it keeps its sockets open but answers nothing. */
  pause(memberIndex: number): void;
  /** SIGCONT a paused member. */
  resume(memberIndex: number): void;
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  process?: ChildProcess;
  exited?: Promise<void>;
  paused: boolean;
  log: string[];
}

// Children that are still running, so a crashing test process does not leave etcd behind.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export async function startEtcd(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  installExitHook();
  const count = options.members ?? 1;
  const binary = options.binary ?? process.env.ORCA_ETCD_BIN ?? '/usr/bin/etcd';
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const token = `orca-test-${process.pid}-${Date.now()}`;
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    members.push({
      name: `m${i}`,
      clientPort: await freePort(),
      peerPort: await freePort(),
      dataDir: await mkdtemp(join(tmpdir(), `orca-etcd-m${i}-`)),
      paused: false,
      log: [],
    });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');

  const launch = (m: Member): void => {
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-state=new`,
      `--initial-cluster-token=${token}`,
      // Loopback round trips are tiny: fast elections keep failover tests short.
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-level=error',
    ];
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const keep = (chunk: Buffer): void => {
      m.log.push(chunk.toString());
      if (m.log.length > 200) m.log.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    m.process = child;
    m.paused = false;
    m.exited = new Promise((resolve) => {
      child.once('exit', () => {
        running.delete(child);
        resolve();
      });
      child.once('error', (err) => {
        m.log.push(String(err));
        running.delete(child);
        resolve();
      });
    });
  };

  const healthy = async (m: Member): Promise<boolean> => {
    try {
      const res = await fetch(`http://127.0.0.1:${m.clientPort}/health`, {
        signal: AbortSignal.timeout(1000),
      });
      const body = (await res.json()) as { health?: string };
      return res.ok && body.health === 'true';
    } catch {
      return false;
    }
  };

  const waitHealthy = async (list: Member[]): Promise<void> => {
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      const results = await Promise.all(list.map(healthy));
      if (results.every(Boolean)) return;
      for (const m of list) {
        if (m.process?.exitCode !== null && m.process?.exitCode !== undefined) {
          throw new Error(`etcd member ${m.name} exited with ${m.process.exitCode}: ${m.log.join('')}`);
        }
      }
      if (Date.now() > deadline) {
        throw new Error(
          `etcd did not become healthy within ${startTimeoutMs} ms: ${list.map((m) => m.log.join('')).join('\n')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const killMember = async (m: Member): Promise<void> => {
    const child = m.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await m.exited;
    m.paused = false;
  };

  const member = (index: number): Member => {
    const m = members[index];
    if (!m) throw new Error(`no etcd member ${index}`);
    return m;
  };

  members.forEach(launch);
  try {
    await waitHealthy(members);
  } catch (err) {
    await Promise.all(members.map(killMember));
    await Promise.all(members.map((m) => rm(m.dataDir, { recursive: true, force: true })));
    throw err;
  }

  return {
    endpoints: members.map((m) => `http://127.0.0.1:${m.clientPort}`),
    async stop() {
      await Promise.all(members.map(killMember));
      await Promise.all(members.map((m) => rm(m.dataDir, { recursive: true, force: true })));
    },
    async kill(index) {
      await killMember(member(index));
    },
    async restart(index) {
      const m = member(index);
      await killMember(m);
      launch(m);
      await waitHealthy([m]);
    },
    pause(index) {
      const m = member(index);
      if (m.process && !m.paused) {
        m.process.kill('SIGSTOP');
        m.paused = true;
      }
    },
    resume(index) {
      const m = member(index);
      if (m.process && m.paused) {
        m.process.kill('SIGCONT');
        m.paused = false;
      }
    },
  };
}
