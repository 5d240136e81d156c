// UCP client bundles: a fresh P-256 key and a client-root certificate for the user, packed with the
// env scripts, kube.yml and docker-context metadata (ucp-api.md §3). The key's public half is
// registered on the account, so deleting that key (or the account) revokes the bundle.
import { ApiError } from '@orca/api';
import type { CertificateAuthorityService } from '@orca/cluster';
import { generateKeyPair, publicKeyFingerprint } from '@orca/pki';
import JSZip from 'jszip';
import type { Directory } from './directory.js';

export interface ClientBundle {
  zip: Buffer;
  keyId: string;
}

export interface BundleOptions {
  /** The user the bundle is for (an active user account name). */
  user: string;
  /** Host (and optional port) clients reach the controller at, from the request. */
  host: string;
  label?: string;
  /** The Kubernetes front door's port (kube.yml, env scripts, meta.json); default 6443. */
  kubePort?: number;
}

const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

function splitHost(host: string): { name: string; port: string } {
  if (!HOST.test(host)) throw new ApiError(400, 'INVALID_REQUEST', 'malformed Host header');
  const match = /^(.*?)(?::([0-9]+))?$/.exec(host) as RegExpExecArray;
  return { name: match[1], port: match[2] ?? '443' };
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** kube.yml with exactly the keys UCP writes (Terraform's provider parses it strictly). */
export function kubeConfig(o: {
  context: string;
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}): string {
  return [
    'apiVersion: v1',
    'clusters:',
    '- cluster:',
    `    certificate-authority-data: ${b64(o.caPem)}`,
    `    server: ${o.server}`,
    `  name: ${o.context}`,
    'contexts:',
    '- context:',
    `    cluster: ${o.context}`,
    `    user: ${o.context}`,
    `  name: ${o.context}`,
    `current-context: ${o.context}`,
    'kind: Config',
    'preferences: {}',
    'users:',
    `- name: ${o.context}`,
    '  user:',
    `    client-certificate-data: ${b64(o.certPem)}`,
    `    client-key-data: ${b64(o.keyPem)}`,
    '',
  ].join('\n');
}

export async function createClientBundle(
  directory: Directory,
  cas: CertificateAuthorityService,
  options: BundleOptions,
): Promise<ClientBundle> {
  const account = await directory.user(options.user);
  if (!account.isActive) throw new ApiError(403, 'FORBIDDEN', 'the account is inactive');
  const { name: hostName, port } = splitHost(options.host);
  const { instanceId } = await cas.cluster();
  const clientCa = await cas.clientAuthority();
  const keys = await generateKeyPair();
  const { certPem } = await clientCa.issueClientCertificate({
    publicKeyPem: keys.publicKeyPem,
    commonName: account.name,
    instanceId,
  });
  // ca.pem verifies the controller (cluster CA) and the bundle's own certificate (client root CA).
  const caPem = (await cas.clusterBundle()) + clientCa.certPem;
  const registered = await directory.addPublicKey(account.name, {
    publicKey: keys.publicKeyPem,
    label: options.label ?? '',
  });
  const dockerHost = `tcp://${hostName}:${port}`;
  const kubeHost = `${hostName}:${options.kubePort ?? 6443}`;
  const context = `ucp_${kubeHost}_${account.name}`;
  const isAdmin = account.isAdmin;
  const adminNote = isAdmin
    ? [
        '# This admin cert will also work directly against Swarm and the individual engine proxies for troubleshooting.',
        '# After sourcing this env file, use "docker info" to discover the location of Swarm managers and engines.',
        '# and use the --host option to override $DOCKER_HOST',
        '#',
      ]
    : [];
  const envSh = [
    'export DOCKER_TLS_VERIFY=1',
    'export COMPOSE_TLS_VERSION=TLSv1_2',
    'export DOCKER_CERT_PATH=$PWD',
    `export DOCKER_HOST=${dockerHost}`,
    '',
    'if kubectl >/dev/null 2>&1; then',
    '    unset KUBECONFIG',
    `    kubectl config set-cluster ${context} --server https://${kubeHost} --certificate-authority "$PWD/ca.pem" --embed-certs`,
    `    kubectl config set-credentials ${context} --client-key "$PWD/key.pem" --client-certificate "$PWD/cert.pem" --embed-certs`,
    `    kubectl config set-context ${context} --user ${context} --cluster ${context}`,
    'fi',
    'export KUBECONFIG=$PWD/kube.yml',
    '',
    '#',
    `# Bundle for user ${account.name}`,
    `# UCP Instance ID ${instanceId}`,
    '#',
    ...adminNote,
    '# Run this command from within this directory to configure your shell:',
    '# eval "$(<env.sh)"',
    '',
  ].join('\n');
  const envPs1 = [
    '$Env:DOCKER_TLS_VERIFY = "1"',
    '$Env:COMPOSE_TLS_VERSION = "TLSv1_2"',
    '$Env:DOCKER_CERT_PATH = $(Split-Path -Parent $MyInvocation.MyCommand.Path)',
    `$Env:DOCKER_HOST = "${dockerHost}"`,
    '$Env:KUBECONFIG = $(Join-Path $(Split-Path -Parent $MyInvocation.MyCommand.Path) "kube.yml")',
    '',
    '#',
    `# Bundle for user ${account.name}`,
    `# UCP Instance ID ${instanceId}`,
    '#',
    '# Run this command from within this directory to configure your shell:',
    '# Import-Module .\\env.ps1',
    '',
  ].join('\r\n');
  const envCmd = [
    '@echo off',
    'set DOCKER_TLS_VERIFY=1',
    'set COMPOSE_TLS_VERSION=TLSv1_2',
    'set DOCKER_CERT_PATH=%~dp0',
    `set DOCKER_HOST=${dockerHost}`,
    'set KUBECONFIG=%~dp0kube.yml',
    '',
    `REM Bundle for user ${account.name}`,
    `REM UCP Instance ID ${instanceId}`,
    '',
  ].join('\r\n');
  const meta = {
    Name: `ucp-bundle-${account.name}`,
    Metadata: {
      Description: `Docker EE cluster ${hostName}:${port} as user ${account.name}`,
      StackOrchestrator: 'all',
    },
    Endpoints: {
      docker: { Host: dockerHost, SkipTLSVerify: false },
      kubernetes: { Host: `https://${kubeHost}`, SkipTLSVerify: false },
    },
  };

  const zip = new JSZip();
  zip.file('ca.pem', caPem);
  zip.file('cert.pem', certPem);
  zip.file('key.pem', keys.privateKeyPem, { unixPermissions: 0o600 });
  // Byte-identical (after trim) to the registered key, which clients match bundles by.
  zip.file('cert.pub', registered.publicKey);
  zip.file('env.sh', envSh);
  zip.file('env.ps1', envPs1);
  zip.file('env.cmd', envCmd);
  zip.file(
    'kube.yml',
    kubeConfig({ context, server: `https://${kubeHost}`, caPem, certPem, keyPem: keys.privateKeyPem }),
  );
  zip.file('meta.json', JSON.stringify(meta));
  zip.file('tls/docker/ca.pem', caPem);
  zip.file('tls/docker/cert.pem', certPem);
  zip.file('tls/docker/key.pem', keys.privateKeyPem, { unixPermissions: 0o600 });
  const keyId = publicKeyFingerprint(keys.publicKeyPem);
  const buffer = await zip.generateAsync({
    type: 'nodebuffer',
    platform: 'UNIX',
    compression: 'DEFLATE',
    // Clients fall back to the archive comment as the bundle id: the registered key id.
    comment: keyId,
  });
  return { zip: buffer, keyId };
}
