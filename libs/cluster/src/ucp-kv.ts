// ucp-kv's etcd flags, shared by the docker-runtime ucp-kv and the npm-start (process) one.
/** etcd's flags for ucp-kv: a single-member cluster with mutual TLS on client and peer URLs. */
export function ucpKvFlags(kv: {
  nodeId: string;
  dataDir: string;
  certsDir: string;
  kvUrl: string;
  peerUrl: string;
}): string[] {
  const { nodeId, dataDir, certsDir, kvUrl, peerUrl } = kv;
  return [
    '--name',
    nodeId,
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    kvUrl,
    '--advertise-client-urls',
    kvUrl,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `${nodeId}=${peerUrl}`,
    '--cert-file',
    `${certsDir}/cert.pem`,
    '--key-file',
    `${certsDir}/key.pem`,
    '--trusted-ca-file',
    `${certsDir}/ca.pem`,
    '--client-cert-auth',
    '--peer-cert-file',
    `${certsDir}/cert.pem`,
    '--peer-key-file',
    `${certsDir}/key.pem`,
    '--peer-trusted-ca-file',
    `${certsDir}/ca.pem`,
    '--peer-client-cert-auth',
  ];
}
