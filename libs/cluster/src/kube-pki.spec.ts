import { parseCertificate, verifyCertificate } from '@orca/pki';
import { EmbeddedStore } from '@orca/store';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthorityService } from './certificate-authority.service.js';
import {
  apiserverHosts,
  firstAddressOf,
  KUBE_IDENTITIES,
  KUBE_SERVICE_CIDR,
  KUBE_SERVICE_IP,
  KubePki,
} from './kube-pki.js';
import { keys, type NodeSpec } from './model.js';

const KEK = Buffer.alloc(32, 7).toString('base64');

const node = (id: string, address: string): NodeSpec => ({
  id,
  role: 'swarm-manager',
  hostname: `host-${id}`,
  address,
  runtime: 'process',
  facts: {},
  createdAt: '2026-01-01T00:00:00Z',
});

function keyMatches(certPem: string, keyPem: string): boolean {
  const signature = sign('sha256', Buffer.from('x'), createPrivateKey(keyPem));
  return verify('sha256', Buffer.from('x'), createPublicKey(certPem), signature);
}

describe('KubePki', () => {
  let dir: string;
  let store: EmbeddedStore;
  let cas: CertificateAuthorityService;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orca-kube-pki-'));
    store = new EmbeddedStore({ dir });
    cas = new CertificateAuthorityService(store, KEK);
    await cas.bootstrap(3_600_000 * 24);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('issues every identity from the cluster CA, with the names Kubernetes reads', async () => {
    const pki = new KubePki(store, cas, KEK);
    const material = await pki.nodeMaterial(node('n1', '127.1.2.3'));
    const bundle = await cas.clusterBundle();
    expect(material.caPem).toBe(bundle);

    const api = parseCertificate(material.apiserver.certPem);
    verifyCertificate(material.apiserver.certPem, bundle);
    expect(api.subject.CN).toBe('kube-apiserver');
    expect(api.ipAddresses).toEqual(expect.arrayContaining(['127.1.2.3', '127.0.0.1', KUBE_SERVICE_IP]));
    expect(api.dnsNames).toEqual(
      expect.arrayContaining([
        'localhost',
        'host-n1',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ]),
    );
    expect(keyMatches(material.apiserver.certPem, material.apiserver.keyPem)).toBe(true);

    const subject = (pem: string) => {
      verifyCertificate(pem, bundle);
      return parseCertificate(pem).subject;
    };
    expect(subject(material.controllerManager.certPem).CN).toBe('system:kube-controller-manager');
    expect(subject(material.scheduler.certPem).CN).toBe('system:kube-scheduler');
    expect(subject(material.kwok.certPem)).toMatchObject({ CN: 'system:kwok', O: 'system:masters' });
    expect(subject(material.webhookClient.certPem).CN).toBe('kube-apiserver');
    expect(keyMatches(material.kwok.certPem, material.kwok.keyPem)).toBe(true);
    // The service-account key pair is one pair.
    const sa = createPublicKey(material.serviceAccount.privateKeyPem).export({ type: 'spki', format: 'pem' });
    expect(sa).toBe(material.serviceAccount.publicKeyPem);

    const controller = await pki.controllerMaterial();
    expect(subject(controller.frontProxy.certPem).CN).toBe(KUBE_IDENTITIES.frontProxy.commonName);
    expect(subject(controller.admin.certPem)).toMatchObject({ CN: 'orca-kube-admin', O: 'system:masters' });
    expect(keyMatches(controller.admin.certPem, controller.admin.keyPem)).toBe(true);
  });

  it('keeps private keys sealed in the store and shares cluster material between managers', async () => {
    const a = new KubePki(store, cas, KEK);
    const b = new KubePki(store, cas, KEK);
    const [one, two] = await Promise.all([
      a.nodeMaterial(node('n1', '127.0.0.1')),
      b.nodeMaterial(node('n2', '127.0.0.2')),
    ]);
    expect(two.serviceAccount).toEqual(one.serviceAccount);
    expect(two.controllerManager).toEqual(one.controllerManager);
    expect(two.apiserver.certPem).not.toBe(one.apiserver.certPem);
    const raw = (await store.get(keys.kubeCluster))!.value + (await store.get(keys.kubeNode('n1')))!.value;
    expect(raw).not.toContain('PRIVATE KEY');
    // Stable until the node's names change.
    expect((await a.nodeMaterial(node('n1', '127.0.0.1'))).apiserver).toEqual(one.apiserver);
    const moved = await a.nodeMaterial(node('n1', '127.0.0.9'));
    expect(parseCertificate(moved.apiserver.certPem).ipAddresses).toContain('127.0.0.9');
    expect(moved.serviceAccount).toEqual(one.serviceAccount);
  });

  it("takes the kubernetes Service's address from the service range", () => {
    expect(KUBE_SERVICE_IP).toBe(firstAddressOf(KUBE_SERVICE_CIDR));
    expect(firstAddressOf('127.0.0.0/8')).toBe('127.0.0.1');
    expect(firstAddressOf('127.0.255.255/32')).toBe('127.1.0.0');
  });

  it('names the node, loopback and the kubernetes Service in the serving certificate', () => {
    expect(apiserverHosts({ address: '127.0.0.1', hostname: 'vm' })).toEqual([
      '127.0.0.1',
      'localhost',
      'vm',
      KUBE_SERVICE_IP,
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ]);
  });

  it('renews certificates in the last third of their validity, keeping the service-account key', async () => {
    const pki = new KubePki(store, cas, KEK, 6_000);
    const first = await pki.nodeMaterial(node('n1', '127.0.0.1'));
    // Read again at once: nothing is due, nothing changes.
    expect(await pki.nodeMaterial(node('n1', '127.0.0.1'))).toEqual(first);
    await new Promise((r) => setTimeout(r, 4_200));
    const renewed = await pki.nodeMaterial(node('n1', '127.0.0.1'));
    expect(renewed.apiserver.certPem).not.toBe(first.apiserver.certPem);
    expect(renewed.scheduler.certPem).not.toBe(first.scheduler.certPem);
    expect(parseCertificate(renewed.scheduler.certPem).notAfter.getTime()).toBeGreaterThan(
      Date.now() + 2_000,
    );
    expect(renewed.serviceAccount).toEqual(first.serviceAccount);
    const controller = await pki.controllerMaterial();
    expect(keyMatches(controller.frontProxy.certPem, controller.frontProxy.keyPem)).toBe(true);
    expect(parseCertificate(controller.admin.certPem).notAfter.getTime()).toBeGreaterThan(Date.now() + 2_000);
  });

  it('reissues what no longer chains to the current cluster CA (a rotated CA)', async () => {
    const before = await new KubePki(store, cas, KEK).nodeMaterial(node('n1', '127.0.0.1'));
    // Another cluster CA over the same Kubernetes records stands in for a rotation.
    const otherDir = mkdtempSync(join(tmpdir(), 'orca-kube-pki-other-'));
    const otherStore = new EmbeddedStore({ dir: otherDir });
    try {
      const rotated = new CertificateAuthorityService(otherStore, KEK);
      await rotated.bootstrap(3_600_000 * 24);
      const after = await new KubePki(store, rotated, KEK).nodeMaterial(node('n1', '127.0.0.1'));
      const bundle = await rotated.clusterBundle();
      for (const pem of [
        after.apiserver.certPem,
        after.controllerManager.certPem,
        after.webhookClient.certPem,
      ])
        expect(verifyCertificate(pem, bundle)).toBe(true);
      expect(after.apiserver.certPem).not.toBe(before.apiserver.certPem);
      expect(after.serviceAccount).toEqual(before.serviceAccount);
    } finally {
      await otherStore.close();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });
});
