import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  renameSync,
} from 'node:fs';
import { join } from 'node:path';
import type { RunningComponent, Runtime } from './runtime.js';
import { componentLabels, LABEL_SPEC_HASH, type ComponentSpec } from './spec.js';

export interface ProcessRuntimeOptions {
  /** Holds `<node>--<component>.json` (pid and spec hash) and `<node>--<component>.log`. */
  stateDir: string;
  /** Working directory of the processes (default: this process's). */
  cwd?: string;
  /** Variables every process gets before its spec's env (default: PATH, HOME, TMPDIR, LANG from ours). */
  baseEnv?: Record<string, string>;
  /** How long remove() waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
}

/** What is written per component, so a later reconcile (another process) can find and stop it. */
interface ProcessState {
  managed: true;
  name: string;
  nodeId: string;
  pid: number;
  /** /proc start time of the pid, so a recycled pid is not mistaken for ours. */
  procStart?: string;
  specHash: string;
  labels: Record<string, string>;
  command: string[];
  startedAt: string;
}

const STATE_SUFFIX = '.json';

/**
 * Components as child processes, for the all-in-one `npm start`. `command` is run with `env`; image,
 * mounts, ports, network and user do not apply to a process. Processes run in their own process group
 * and outlive this one (a one-shot reconcile exits after starting them).
 */
export class ProcessRuntime implements Runtime {
  private readonly stopTimeoutMs: number;

  constructor(private readonly opts: ProcessRuntimeOptions) {
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 5000;
    mkdirSync(opts.stateDir, { recursive: true });
  }

  async list(): Promise<RunningComponent[]> {
    const out: RunningComponent[] = [];
    for (const file of readdirSync(this.opts.stateDir)) {
      if (!file.endsWith(STATE_SUFFIX)) continue;
      const id = file.slice(0, -STATE_SUFFIX.length);
      const state = this.read(id);
      if (!state?.managed) continue;
      out.push({
        id,
        name: state.name,
        nodeId: state.nodeId,
        specHash: state.specHash,
        running: isAlive(state),
      });
    }
    return out;
  }

  async start(spec: ComponentSpec, nodeId: string): Promise<string> {
    if (spec.command.length === 0) throw new Error(`component ${spec.name}: a process needs a command`);
    const id = stateId(nodeId, spec.name);
    const log = openSync(join(this.opts.stateDir, `${id}.log`), 'a');
    let pid: number;
    try {
      const child = spawn(spec.command[0], spec.command.slice(1), {
        cwd: this.opts.cwd,
        env: { ...(this.opts.baseEnv ?? defaultBaseEnv()), ...spec.env },
        detached: true,
        stdio: ['ignore', log, log],
      });
      pid = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('spawn', () => resolve(child.pid!));
      });
      child.unref();
    } finally {
      closeSync(log);
    }
    const labels = componentLabels(spec, nodeId);
    const state: ProcessState = {
      managed: true,
      name: spec.name,
      nodeId,
      pid,
      procStart: procStartTime(pid),
      specHash: labels[LABEL_SPEC_HASH],
      labels,
      command: spec.command,
      startedAt: new Date().toISOString(),
    };
    // Write then rename: a reader never sees half a file.
    const path = join(this.opts.stateDir, id + STATE_SUFFIX);
    writeFileSync(`${path}.tmp`, JSON.stringify(state, null, 2));
    renameSync(`${path}.tmp`, path);
    return id;
  }

  async remove(id: string): Promise<void> {
    const state = this.read(id);
    if (state && isAlive(state)) {
      signalGroup(state.pid, 'SIGTERM');
      const deadline = Date.now() + this.stopTimeoutMs;
      while (isAlive(state) && Date.now() < deadline) await delay(25);
      if (isAlive(state)) {
        signalGroup(state.pid, 'SIGKILL');
        while (isAlive(state) && Date.now() < deadline + 2000) await delay(25);
      }
    }
    rmSync(join(this.opts.stateDir, id + STATE_SUFFIX), { force: true });
  }

  private read(id: string): ProcessState | undefined {
    try {
      return JSON.parse(readFileSync(join(this.opts.stateDir, id + STATE_SUFFIX), 'utf8')) as ProcessState;
    } catch {
      return undefined;
    }
  }
}

function stateId(nodeId: string, name: string): string {
  return `${nodeId.replace(/[^a-zA-Z0-9_.-]/g, '_')}--${name}`;
}

function defaultBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const v = process.env[key];
    if (v !== undefined) env[key] = v;
  }
  return env;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]; undefined without /proc. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function procStartTime(pid: number): string | undefined {
  // Field 22 of stat is the start time; it is index 19 after the state field.
  return procStat(pid)?.[19];
}

function isAlive(state: ProcessState): boolean {
  try {
    process.kill(state.pid, 0);
  } catch {
    // ESRCH: gone; EPERM: the pid now belongs to someone else, so it is not ours either.
    return false;
  }
  const stat = procStat(state.pid);
  if (!stat) return true; // no /proc: the signal check is all we have
  if (stat[0] === 'Z' || stat[0] === 'X') return false; // exited, not yet reaped
  return state.procStart === undefined || stat[19] === state.procStart;
}
