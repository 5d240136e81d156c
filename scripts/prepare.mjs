// Installs what `npm start` / `npm test` need on a fresh machine, then builds.
// Idempotent: every step checks first and does nothing when its result is already there.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'start';

function run(cmd, opts = {}) {
  execSync(cmd, { stdio: 'inherit', cwd: root, ...opts });
}

function has(binary) {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

// npm packages: install from the lock when node_modules is missing or older than the lock.
const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  console.log('[prepare] installing npm packages');
  run('npm ci --no-audit --no-fund');
}

// Debian packages the tests use as real components.
const debian = {
  etcd: 'etcd-server',
  dockerd: 'docker.io',
  busybox: 'busybox-static',
  skopeo: 'skopeo',
  'docker-registry': 'docker-registry',
  openssl: 'openssl',
  // The plain TLS proxy reference of bench/frontdoor.ts.
  nginx: 'nginx',
};
if (mode === 'test') {
  const missing = Object.entries(debian)
    .filter(([bin]) => !has(bin))
    .map(([, pkg]) => pkg);
  if (missing.length > 0) {
    if (process.getuid?.() !== 0) {
      console.error(`[prepare] missing Debian packages (${missing.join(' ')}): run as root or install them`);
      process.exit(1);
    }
    console.log(`[prepare] installing Debian packages: ${missing.join(' ')}`);
    run('apt-get update -qq', { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    run(`apt-get install -y -qq --no-install-recommends ${missing.join(' ')}`, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  // Real Kubernetes binaries: built from Go modules once, cached outside the repository by version.
  const { ensureKubeBinaries } = await import('./kube-binaries.mjs');
  try {
    ensureKubeBinaries();
  } catch (error) {
    console.error(`[prepare] Kubernetes binaries: ${error.message}`);
    process.exit(1);
  }
}

// `npm start` runs the Kubernetes control plane unless ORCA_KUBERNETES=false: Debian's etcd as its
// storage, and the binaries built once from Go modules (about 11 minutes the first time). Without
// them orca still starts, with Kubernetes off, and says why.
if (mode === 'start' && process.env.ORCA_KUBERNETES !== 'false' && !process.env.ORCA_KUBE_APISERVER) {
  if (!has('etcd')) {
    if (process.getuid?.() === 0) {
      console.log('[prepare] installing Debian package etcd-server (Kubernetes storage)');
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      run('apt-get update -qq', { env });
      run('apt-get install -y -qq --no-install-recommends etcd-server', { env });
    } else {
      console.log('[prepare] etcd is missing (Debian etcd-server; needs root): Kubernetes will be off');
    }
  }
  const { binaryPaths, ensureKubeBinaries } = await import('./kube-binaries.mjs');
  const paths = binaryPaths();
  if (![paths.kubeApiserver, paths.kubeControllerManager, paths.kubeScheduler, paths.kwok].every(existsSync))
    console.log(
      '[prepare] building kube-apiserver, kube-controller-manager, kube-scheduler and kwok from Go ' +
        'modules (once; about 11 minutes the first time; ORCA_KUBERNETES=false skips it)',
    );
  try {
    ensureKubeBinaries();
  } catch (error) {
    console.log(`[prepare] Kubernetes binaries: ${error.message}; Kubernetes will be off`);
  }
}

// The OCI conformance suite (a Go program) for the DTR tests, built once into a cache outside the repo.
if (mode === 'test') {
  if (has('go')) run('scripts/build-oci-conformance.sh', { stdio: ['ignore', 'ignore', 'inherit'] });
  else console.log('[prepare] go not found: the OCI conformance test will fail until it is installed');
}

// Build when any source is newer than the last build.
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(path));
    else if (entry.name.endsWith('.ts')) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}
const stamp = join(root, 'dist', '.built');
const sources = Math.max(...['apps', 'libs', 'bench'].map((d) => newest(join(root, d))));
if (!existsSync(stamp) || statSync(stamp).mtimeMs < sources) {
  console.log('[prepare] building');
  run('npx tsc -p tsconfig.build.json');
  run(`touch dist/.built`, { shell: true });
}
