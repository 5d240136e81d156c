#!/usr/bin/env node
// Builds the real Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler
// from the Go module k8s.io/kubernetes) and kwok (sigs.k8s.io/kwok) once, into a cache outside the
// repository keyed by version:
//   ${XDG_CACHE_HOME:-$HOME/.cache}/orca/kube/<k8s version>/bin/{kube-apiserver,...}
//   ${XDG_CACHE_HOME:-$HOME/.cache}/orca/kwok/<kwok version>/bin/kwok
// Idempotent: nothing is built when the binaries exist and answer --version.
//
// Usage: node scripts/kube-binaries.mjs            build what is missing
//        node scripts/kube-binaries.mjs --paths    print the binary paths as JSON (builds nothing)
//
// k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every k8s.io/* staging module with
// ./staging/src/..., which the module zip lacks. So a throwaway builder module (in the cache dir)
// requires k8s.io/kubernetes and pins each staging module to the matching v0.<minor>.<patch>.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// kubectl here is 1.32; the apiserver must be within one minor version of it (1.31-1.33).
// Not v1.32.13: the module proxy refuses k8s.io/endpointslice@v0.32.13's zip (403), and v1.33.13
// is the newest release whose staging modules it serves at exactly the matching v0.33.13.
export const KUBERNETES_VERSION = 'v1.33.13';
// kwok v0.7.0 (client-go v0.33) still falls back to its built-in node and pod stages (v0.8.0 does not).
export const KWOK_VERSION = 'v0.7.0';

export const KUBE_COMMANDS = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];

export function cacheRoot() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'orca');
}

/** Where the binaries live (whether or not they are built yet). */
export function binaryPaths(kubeVersion = KUBERNETES_VERSION, kwokVersion = KWOK_VERSION) {
  const kubeBin = join(cacheRoot(), 'kube', kubeVersion, 'bin');
  return {
    kubernetesVersion: kubeVersion,
    kwokVersion,
    kubeApiserver: join(kubeBin, 'kube-apiserver'),
    kubeControllerManager: join(kubeBin, 'kube-controller-manager'),
    kubeScheduler: join(kubeBin, 'kube-scheduler'),
    kwok: join(cacheRoot(), 'kwok', kwokVersion, 'bin', 'kwok'),
  };
}

function log(message) {
  console.log(`[kube-binaries] ${message}`);
}

class BuildError extends Error {}

/** True when `binary --version` runs and prints the expected version. */
function answersVersion(binary, expected) {
  if (!existsSync(binary)) return false;
  const result = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 && `${result.stdout}${result.stderr}`.includes(expected);
}

// Builds run niced and narrow: the machine has 2 cores shared with other work.
function goEnv(extra = {}) {
  return {
    ...process.env,
    GOMAXPROCS: process.env.GOMAXPROCS ?? '2',
    GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'local',
    GOFLAGS: '-buildvcs=false',
    CGO_ENABLED: '0',
    ...extra,
  };
}

function go(args, cwd, env = goEnv()) {
  log(`(in ${cwd}) go ${args.join(' ')}`);
  const result = spawnSync('nice', ['-n', '19', 'go', ...args], { cwd, env, stdio: 'inherit' });
  if (result.error) throw new BuildError(`could not run go: ${result.error.message}`);
  if (result.status !== 0) {
    throw new BuildError(`go ${args.join(' ')} failed (exit ${result.status ?? result.signal}) in ${cwd}`);
  }
}

function parallelism() {
  return process.env.ORCA_GO_BUILD_PARALLEL ?? '1';
}

/** The go.mod of k8s.io/kubernetes at `version`, as the module proxy serves it. */
function readUpstreamGoMod(version, cwd) {
  mkdirSync(cwd, { recursive: true });
  log(`(in ${cwd}) go mod download -json k8s.io/kubernetes@${version}`);
  const result = spawnSync('go', ['mod', 'download', '-json', `k8s.io/kubernetes@${version}`], {
    cwd,
    env: goEnv(),
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  let info;
  try {
    info = JSON.parse(result.stdout);
  } catch {
    throw new BuildError(`go mod download k8s.io/kubernetes@${version} failed: ${result.stderr.trim()}`);
  }
  if (info.Error || !info.GoMod) {
    throw new BuildError(`go mod download k8s.io/kubernetes@${version} failed: ${info.Error ?? 'no go.mod'}`);
  }
  return readFileSync(info.GoMod, 'utf8');
}

/** Staging modules (replaced by ./staging/src/...), the go line and godebug settings. */
export function parseUpstreamGoMod(text) {
  const staging = [...text.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s*=>\s*\.\/staging\/src\//gm)].map((m) => m[1]);
  const goLine = /^go\s+(\S+)/m.exec(text);
  const godebug = [...text.matchAll(/^godebug\s+(\S+)/gm)].map((m) => m[1]);
  if (staging.length === 0 || !goLine)
    throw new BuildError('unexpected k8s.io/kubernetes go.mod: no staging replaces');
  return { staging, go: goLine[1], godebug };
}

function writeBuilderModule(version, versionDir, builder, stagingVersion) {
  // The staging list, go and godebug lines come from k8s.io/kubernetes's own go.mod for this release,
  // so the pins follow the release and the binaries run with upstream's GODEBUG defaults.
  const upstream = parseUpstreamGoMod(readUpstreamGoMod(version, versionDir));
  const replaces = upstream.staging.map((m) => `\t${m} => ${m} ${stagingVersion}`).join('\n');
  writeFileSync(
    join(builder, 'go.mod'),
    `// Generated by orca scripts/kube-binaries.mjs; throwaway module that builds the control plane.
module orca.invalid/kube-builder

go ${upstream.go}

${upstream.godebug.map((line) => `godebug ${line}`).join('\n')}

require k8s.io/kubernetes ${version}

replace (
${replaces}
)
`,
  );
  writeFileSync(
    join(builder, 'tools.go'),
    `//go:build tools

// Keeps the commands in the module graph for go mod tidy.
package tools

import (
${KUBE_COMMANDS.map((c) => `\t_ "k8s.io/kubernetes/cmd/${c}"`).join('\n')}
)
`,
  );
}

function buildKubernetes(version, paths) {
  const match = /^v1\.(\d+)\.(\d+)$/.exec(version);
  if (!match) throw new BuildError(`unsupported Kubernetes version ${version}`);
  const [, minor, patch] = match;
  const stagingVersion = `v0.${minor}.${patch}`;
  const versionDir = join(cacheRoot(), 'kube', version);
  const builder = join(versionDir, 'builder');
  mkdirSync(builder, { recursive: true });

  // The builder module is written and tidied once; a marker, not go.sum's presence, says it is done
  // (an interrupted tidy can leave a partial go.sum; rewriting a tidied go.mod would undo tidy).
  const tidied = join(builder, '.tidied');
  if (!existsSync(tidied)) {
    writeBuilderModule(version, versionDir, builder, stagingVersion);
    go(['mod', 'tidy'], builder);
    writeFileSync(tidied, '');
  }

  const ldflags = [
    '-s',
    '-w',
    '-buildid=',
    ...['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => [
      `-X ${pkg}.gitVersion=${version}`,
      `-X ${pkg}.gitMajor=1`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
      `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
    ]),
  ].join(' ');
  // Build into a temp dir, then rename: an interrupted build never leaves a binary that looks done.
  const tmp = join(versionDir, `bin.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const started = Date.now();
    go(
      [
        'build',
        '-p',
        parallelism(),
        '-trimpath',
        '-tags',
        'selinux,notest',
        '-ldflags',
        ldflags,
        '-o',
        `${tmp}/`,
        ...KUBE_COMMANDS.map((c) => `k8s.io/kubernetes/cmd/${c}`),
      ],
      builder,
    );
    log(`built Kubernetes ${version} in ${Math.round((Date.now() - started) / 1000)} s`);
    const binDir = join(versionDir, 'bin');
    mkdirSync(binDir, { recursive: true });
    for (const command of KUBE_COMMANDS) {
      renameSync(join(tmp, command), join(binDir, command));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  for (const binary of [paths.kubeApiserver, paths.kubeControllerManager, paths.kubeScheduler]) {
    if (!answersVersion(binary, version))
      throw new BuildError(`${binary} was built but does not answer --version`);
  }
}

function buildKwok(version, paths) {
  const versionDir = join(cacheRoot(), 'kwok', version);
  const tmp = join(versionDir, `bin.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const started = Date.now();
    // kwok's go.mod has no replace directives, so `go install module@version` works; GOBIN = temp dir.
    go(
      [
        'install',
        '-p',
        parallelism(),
        '-trimpath',
        '-ldflags',
        '-s -w',
        `sigs.k8s.io/kwok/cmd/kwok@${version}`,
      ],
      versionDir,
      goEnv({ GOBIN: tmp }),
    );
    log(`built kwok ${version} in ${Math.round((Date.now() - started) / 1000)} s`);
    mkdirSync(join(versionDir, 'bin'), { recursive: true });
    renameSync(join(tmp, 'kwok'), paths.kwok);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!answersVersion(paths.kwok, version.replace(/^v/, ''))) {
    throw new BuildError(`${paths.kwok} was built but does not answer --version`);
  }
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** One build at a time per cache: several test runs on one machine may start together. */
function withBuildLock(fn) {
  mkdirSync(cacheRoot(), { recursive: true });
  const lock = join(cacheRoot(), 'build.lock');
  let announced = false;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(lock, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (holder > 0 && !processAlive(holder)) {
      rmSync(lock, { force: true }); // left by a build that was killed
      continue;
    }
    if (!announced) log(`waiting for the build running in process ${holder || '?'}`);
    announced = true;
    sleepSync(2_000);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function readiness(paths) {
  return {
    kube: [paths.kubeApiserver, paths.kubeControllerManager, paths.kubeScheduler].every((b) =>
      answersVersion(b, paths.kubernetesVersion),
    ),
    kwok: answersVersion(paths.kwok, paths.kwokVersion.replace(/^v/, '')),
  };
}

/** Builds whatever is missing; returns the paths. Throws on failure. */
export function ensureKubeBinaries(kubeVersion = KUBERNETES_VERSION, kwokVersion = KWOK_VERSION) {
  const paths = binaryPaths(kubeVersion, kwokVersion);
  const cached = () => {
    const ready = readiness(paths);
    if (ready.kube && ready.kwok)
      log(`Kubernetes ${kubeVersion} and kwok ${kwokVersion} are cached in ${cacheRoot()}`);
    return ready;
  };
  const first = cached();
  if (first.kube && first.kwok) return paths;
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new BuildError('the go command is needed to build the Kubernetes binaries and was not found');
  }
  return withBuildLock(() => {
    // Another process may have built them while this one waited for the lock.
    const ready = cached();
    if (!ready.kube) {
      log(
        `building Kubernetes ${kubeVersion} (kube-apiserver, kube-controller-manager, kube-scheduler); this takes a while`,
      );
      buildKubernetes(kubeVersion, paths);
    }
    if (!ready.kwok) {
      log(`building kwok ${kwokVersion}`);
      buildKwok(kwokVersion, paths);
    }
    // Temp dirs of builds that were killed (the lock says no build is running now).
    for (const dir of [join(cacheRoot(), 'kube', kubeVersion), join(cacheRoot(), 'kwok', kwokVersion)]) {
      for (const entry of existsSync(dir) ? readdirSync(dir) : []) {
        if (entry.startsWith('bin.tmp-')) rmSync(join(dir, entry), { recursive: true, force: true });
      }
    }
    if (!ready.kube || !ready.kwok) log(`done: ${JSON.stringify(paths)}`);
    return paths;
  });
}

const invokedDirectly = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  if (process.argv.includes('--paths')) {
    console.log(JSON.stringify(binaryPaths()));
  } else {
    try {
      ensureKubeBinaries();
    } catch (error) {
      console.error(`[kube-binaries] FAILED: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    }
  }
}
