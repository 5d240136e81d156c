import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertificateAuthority,
  CertificateValidityError,
  CertificateVerifyError,
  createCsr,
  createRootCa,
  CsrInvalidError,
  generateKeyPair,
  isCertificateValid,
  parseCertificate,
  publicKeyFingerprint,
  verifyCertificate,
  verifyCsr,
  type CaMaterial,
} from './index.js';
import { fromPem, toPem } from './der.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// A fixed instant in the past: the roots are made at it too, so tests that pass it do not depend on the clock.
const NOW = new Date('2026-11-28T10:20:30Z');

let dir: string;
let clusterRoot: CaMaterial;
let clientRoot: CaMaterial;
let clusterCa: CertificateAuthority;
let clientCa: CertificateAuthority;

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function openssl(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

async function csr(): Promise<{ csrPem: string; publicKeyPem: string; privateKeyPem: string }> {
  const keys = await generateKeyPair();
  return { ...keys, csrPem: await createCsr(keys) };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orca-pki-'));
  [clusterRoot, clientRoot] = await Promise.all([
    createRootCa({ commonName: 'swarm-ca', now: NOW }),
    createRootCa({ commonName: 'UCP Client Root CA', now: NOW }),
  ]);
  clusterCa = new CertificateAuthority(clusterRoot);
  clientCa = await CertificateAuthority.load(clientRoot);
  write('root.pem', clusterCa.bundlePem);
  write('client-root.pem', clientCa.bundlePem);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createRootCa', () => {
  it('makes a 20-year self-signed ECDSA P-256 CA with CA usages', async () => {
    const root = await createRootCa({ commonName: 'swarm-ca', now: NOW });
    const parsed = parseCertificate(root.certPem);
    expect(parsed.subject).toEqual({ CN: 'swarm-ca', OU: undefined, O: undefined });
    expect(parsed.issuerCN).toBe('swarm-ca');
    expect(parsed.isCa).toBe(true);
    expect(parsed.keyUsages).toEqual(['keyCertSign', 'cRLSign']);
    expect(parsed.subjectKeyId).toMatch(/^[0-9a-f]{40}$/);
    expect(parsed.notAfter.getTime() - NOW.getTime()).toBe(20 * 365 * DAY);
    expect(root.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(root.certPem.endsWith('-----END CERTIFICATE-----\n')).toBe(true);

    const text = openssl('x509', '-noout', '-text', '-in', write('r.pem', root.certPem)).out;
    expect(text).toContain('ecdsa-with-SHA256');
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const at = String(Math.floor(NOW.getTime() / 1000));
    expect(openssl('verify', '-attime', at, '-CAfile', join(dir, 'r.pem'), join(dir, 'r.pem')).status).toBe(
      0,
    );
  });

  it('encodes dates from 2050 on as GeneralizedTime', async () => {
    const root = await createRootCa({ commonName: 'swarm-ca', validityYears: 30, now: NOW });
    expect(parseCertificate(root.certPem).notAfter.getTime()).toBe(NOW.getTime() + 30 * 365 * DAY);
    const text = openssl('x509', '-noout', '-enddate', '-in', write('g.pem', root.certPem)).out;
    expect(text.trim()).toBe('notAfter=Nov 20 10:20:30 2056 GMT');
    const asn1 = openssl('asn1parse', '-in', join(dir, 'g.pem')).out;
    expect(asn1).toContain('UTCTIME           :261128092030Z');
    expect(asn1).toContain('GENERALIZEDTIME   :20561120102030Z');
  });

  it('puts the organization before the CN, like Go pkix names', async () => {
    const root = await createRootCa({
      commonName: 'UCP Client Root CA',
      organization: 'Orca',
      validityYears: 1,
    });
    const subject = openssl('x509', '-noout', '-subject', '-in', write('o.pem', root.certPem)).out;
    expect(subject.trim()).toBe('subject=O = Orca, CN = UCP Client Root CA');
  });
});

describe('CertificateAuthority', () => {
  it('serves a deterministic bundle: the canonical cert PEM with a trailing newline', () => {
    expect(clusterCa.bundlePem).toBe(clusterRoot.certPem);
    const crlf = { ...clusterRoot, certPem: clusterRoot.certPem.replace(/\n/g, '\r\n').trimEnd() };
    expect(new CertificateAuthority(crlf).bundlePem).toBe(clusterCa.bundlePem);
    expect(clusterCa.digest).toBe(`sha256:${createHash('sha256').update(clusterCa.bundlePem).digest('hex')}`);
  });

  it('refuses a key that does not belong to the certificate', () => {
    expect(
      () => new CertificateAuthority({ certPem: clusterRoot.certPem, keyPem: clientRoot.keyPem }),
    ).toThrow(/does not match/);
  });

  it('issues a worker certificate with swarmkit fields, 90 days + 1h backdate', async () => {
    const req = await csr();
    const issued = await clusterCa.issueNodeCertificate({
      csrPem: req.csrPem,
      nodeId: 'dw02poa4vqvzxi5c10gm4pq2g',
      role: 'swarm-worker',
      clusterId: 'ec2adilxf4ngv7ev8fwsi61i7',
      now: NOW,
    });
    expect(issued.notBefore.getTime()).toBe(NOW.getTime() - HOUR);
    expect(issued.notAfter.getTime()).toBe(NOW.getTime() + 90 * DAY);

    const parsed = parseCertificate(issued.certPem);
    expect(parsed.subject).toEqual({
      CN: 'dw02poa4vqvzxi5c10gm4pq2g',
      OU: 'swarm-worker',
      O: 'ec2adilxf4ngv7ev8fwsi61i7',
    });
    expect(parsed.issuerCN).toBe('swarm-ca');
    expect(parsed.sans).toEqual(['swarm-worker', 'dw02poa4vqvzxi5c10gm4pq2g']);
    expect(parsed.keyUsages).toEqual(['digitalSignature', 'keyEncipherment']);
    expect(parsed.extendedKeyUsages).toEqual(['serverAuth', 'clientAuth']);
    expect(parsed.isCa).toBe(false);
    expect(parsed.authorityKeyId).toBe(clusterCa.subjectKeyId);
    expect(parsed.serialNumber).toBe(issued.serialNumber);
    expect(parsed.serialNumber.length).toBeGreaterThanOrEqual(28); // 128 random bits
    expect(parsed.publicKeySpkiPem).toBe(req.publicKeyPem);
    expect(parsed.notBefore).toEqual(issued.notBefore);
    expect(parsed.notAfter).toEqual(issued.notAfter);

    const path = write('worker.pem', issued.certPem);
    const text = openssl('x509', '-noout', '-text', '-in', path).out;
    expect(text).toContain('Issuer: CN = swarm-ca');
    expect(text).toContain(
      'Subject: O = ec2adilxf4ngv7ev8fwsi61i7, OU = swarm-worker, CN = dw02poa4vqvzxi5c10gm4pq2g',
    );
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(text).toContain('Not Before: Nov 28 09:20:30 2026 GMT');
    expect(text).toContain('Not After : Feb 26 10:20:30 2027 GMT');
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(
      /Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Subject Alternative Name:\s+DNS:swarm-worker, DNS:dw02poa4vqvzxi5c10gm4pq2g\n/);
    expect(text).toContain('X509v3 Authority Key Identifier');
    expect(text).toContain('X509v3 Subject Key Identifier');
  });

  it('gives managers the swarm-ca SAN and extra hosts, IPs as IP SANs; openssl verifies against the right root only', async () => {
    const req = await csr();
    const issued = await clusterCa.issueNodeCertificate({
      csrPem: req.csrPem,
      nodeId: 'node-m1',
      role: 'swarm-manager',
      clusterId: 'cluster-1',
      hosts: ['127.0.0.2', 'manager1.local', '127.0.0.1', '::1', 'node-m1'],
    });
    const parsed = parseCertificate(issued.certPem);
    expect(parsed.subject.OU).toBe('swarm-manager');
    expect(parsed.dnsNames).toEqual(['swarm-manager', 'node-m1', 'swarm-ca', 'manager1.local']);
    expect(parsed.ipAddresses).toEqual(['127.0.0.2', '127.0.0.1', '::1']);
    expect(issued.notAfter.getTime() - issued.notBefore.getTime()).toBe(90 * DAY + HOUR);

    const path = write('manager.pem', issued.certPem);
    const san = openssl('x509', '-noout', '-ext', 'subjectAltName', '-in', path).out;
    expect(san).toContain(
      'DNS:swarm-manager, DNS:node-m1, DNS:swarm-ca, DNS:manager1.local, IP Address:127.0.0.2, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    const ok = openssl('verify', '-CAfile', join(dir, 'root.pem'), path);
    expect(ok).toEqual({ status: 0, out: `${path}: OK\n` });
    expect(openssl('verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'root.pem'), path).status).toBe(0);
    expect(openssl('verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.pem'), path).status).toBe(0);
    expect(openssl('verify', '-CAfile', join(dir, 'client-root.pem'), path).status).not.toBe(0);
  });

  it('takes only the public key from the CSR: a subject claiming OU=swarm-manager still gets the caller role', async () => {
    const keys = await generateKeyPair();
    const keyPath = write('evil.key', keys.privateKeyPem);
    const r = spawnSync(
      'openssl',
      ['req', '-new', '-key', keyPath, '-subj', '/O=other-cluster/OU=swarm-manager/CN=evil-node', '-sha256'],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('BEGIN CERTIFICATE REQUEST');
    const issued = await clusterCa.issueNodeCertificate({
      csrPem: r.stdout,
      nodeId: 'n2',
      role: 'swarm-worker',
      clusterId: 'c1',
    });
    const parsed = parseCertificate(issued.certPem);
    expect(parsed.subject).toEqual({ CN: 'n2', OU: 'swarm-worker', O: 'c1' });
    expect(parsed.dnsNames).not.toContain('swarm-manager');
    expect(parsed.dnsNames).not.toContain('swarm-ca');
  });

  it('refuses a tampered CSR (public key swapped after signing) with CsrInvalidError', async () => {
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    const der = fromPem(await createCsr(a), 'CERTIFICATE REQUEST');
    const spkiA = createPublicKeyDer(a.publicKeyPem, 'spki');
    const spkiB = createPublicKeyDer(b.publicKeyPem, 'spki');
    const at = der.indexOf(spkiA);
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(der);
    spkiB.copy(tampered, at);
    const tamperedPem = toPem('CERTIFICATE REQUEST', tampered);

    await expect(
      clusterCa.issueNodeCertificate({
        csrPem: tamperedPem,
        nodeId: 'n',
        role: 'swarm-worker',
        clusterId: 'c',
      }),
    ).rejects.toBeInstanceOf(CsrInvalidError);
    expect(() => verifyCsr(tamperedPem)).toThrow(/signature does not verify/);
    expect(verifyCsr(toPem('CERTIFICATE REQUEST', der)).publicKeySpkiPem).toBe(a.publicKeyPem);
    expect(openssl('req', '-verify', '-noout', '-in', write('t.csr', tamperedPem)).out).toMatch(
      /verify failure/i,
    );
  });

  it('accepts the other key types swarmkit allows and refuses weak ones', async () => {
    const opensslCsr = (keyPem: string) => {
      const r = spawnSync(
        'openssl',
        ['req', '-new', '-key', write('k.pem', keyPem), '-subj', '/CN=x', '-sha384'],
        {
          encoding: 'utf8',
        },
      );
      expect(r.status).toBe(0);
      return r.stdout;
    };
    const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const issued = await clusterCa.issueNodeCertificate({
      csrPem: opensslCsr(pem(p384.privateKey)),
      nodeId: 'n384',
      role: 'swarm-worker',
      clusterId: 'c',
    });
    expect(parseCertificate(issued.certPem).publicKeySpkiPem).toBe(
      p384.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await expect(
      clusterCa.issueNodeCertificate({
        csrPem: opensslCsr(pem(rsa.privateKey)),
        nodeId: 'n',
        role: 'swarm-worker',
        clusterId: 'c',
      }),
    ).rejects.toThrow(new CsrInvalidError('invalid CSR: RSA keys must be at least 2048 bits'));
  });

  it('refuses malformed CSRs with CsrInvalidError', async () => {
    for (const bad of [
      '',
      'hello',
      '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
    ]) {
      await expect(
        clusterCa.issueNodeCertificate({ csrPem: bad, nodeId: 'n', role: 'swarm-worker', clusterId: 'c' }),
      ).rejects.toBeInstanceOf(CsrInvalidError);
    }
  });

  it('enforces the 1h minimum validity and honours longer ones', async () => {
    const { csrPem } = await csr();
    const base = { csrPem, nodeId: 'n', role: 'swarm-worker' as const, clusterId: 'c', now: NOW };
    await expect(clusterCa.issueNodeCertificate({ ...base, validityMs: HOUR - 1 })).rejects.toThrow(
      new CertificateValidityError('minimum certificate expiry time is: 1h'),
    );
    const oneHour = await clusterCa.issueNodeCertificate({ ...base, validityMs: HOUR });
    expect(oneHour.notAfter.getTime() - oneHour.notBefore.getTime()).toBe(2 * HOUR);
    const year = await clusterCa.issueNodeCertificate({ ...base, validityMs: 365 * DAY });
    expect(year.notAfter.getTime()).toBe(NOW.getTime() + 365 * DAY);
    await expect(clusterCa.issueNodeCertificate({ ...base, role: 'swarm-ca' as never })).rejects.toThrow(
      TypeError,
    );
  });

  it('issues UCP client bundle certificates from the client root (public key or CSR)', async () => {
    const keys = await generateKeyPair();
    const issued = await clientCa.issueClientCertificate({
      publicKeyPem: keys.publicKeyPem,
      commonName: 'joe-dev',
      instanceId: 'saglbp0vlmk49n0clpopam8nv',
    });
    const parsed = parseCertificate(issued.certPem);
    expect(parsed.subject).toEqual({ O: 'Orca: saglbp0vlmk49n0clpopam8nv', OU: 'Client', CN: 'joe-dev' });
    expect(parsed.issuerCN).toBe('UCP Client Root CA');
    expect(parsed.extendedKeyUsages).toEqual(['clientAuth']);
    expect(parsed.sans).toEqual([]);
    expect(parsed.publicKeySpkiPem).toBe(keys.publicKeyPem);
    expect(issued.notAfter.getTime() - issued.notBefore.getTime()).toBe(10 * 365 * DAY + HOUR);

    const path = write('client.pem', issued.certPem);
    expect(openssl('x509', '-noout', '-subject', '-in', path).out.trim()).toBe(
      'subject=O = Orca: saglbp0vlmk49n0clpopam8nv, OU = Client, CN = joe-dev',
    );
    expect(openssl('verify', '-CAfile', join(dir, 'client-root.pem'), path)).toEqual({
      status: 0,
      out: `${path}: OK\n`,
    });
    expect(
      openssl('verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'client-root.pem'), path).status,
    ).toBe(0);
    expect(
      openssl('verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'client-root.pem'), path).status,
    ).not.toBe(0);
    expect(openssl('verify', '-CAfile', join(dir, 'root.pem'), path).status).not.toBe(0);

    const fromCsr = await clientCa.issueClientCertificate({
      csrPem: await createCsr(keys),
      commonName: 'admin',
      instanceId: 'inst',
      validityMs: DAY,
    });
    expect(parseCertificate(fromCsr.certPem).subject.CN).toBe('admin');
    await expect(clientCa.issueClientCertificate({ commonName: 'x', instanceId: 'i' })).rejects.toThrow(
      TypeError,
    );
  });

  it('issues a server certificate with SANs for the controller', async () => {
    const keys = await generateKeyPair();
    const issued = await clusterCa.issueServerCertificate({
      publicKeyPem: keys.publicKeyPem,
      commonName: 'ucp-controller',
      hosts: ['localhost', '127.0.0.1', 'ucp.example.test'],
    });
    const parsed = parseCertificate(issued.certPem);
    expect(parsed.subject.CN).toBe('ucp-controller');
    expect(parsed.sans).toEqual(['localhost', 'ucp.example.test', '127.0.0.1']);
    expect(parsed.extendedKeyUsages).toEqual(['serverAuth', 'clientAuth']);
    expect(verifyCertificate(issued.certPem, clusterCa.bundlePem)).toBe(true);
  });
});

describe('verifyCertificate', () => {
  it('accepts a good certificate and names the failed check otherwise', async () => {
    const { csrPem } = await csr();
    const issued = await clusterCa.issueNodeCertificate({
      csrPem,
      nodeId: 'n',
      role: 'swarm-worker',
      clusterId: 'c',
      now: NOW,
    });
    const reason = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(CertificateVerifyError);
        return (err as CertificateVerifyError).reason;
      }
      return 'ok';
    };
    expect(verifyCertificate(issued.certPem, clusterCa.bundlePem, NOW)).toBe(true);
    expect(reason(() => verifyCertificate(issued.certPem, clientCa.bundlePem, NOW))).toBe('issuer');
    expect(
      reason(() =>
        verifyCertificate(issued.certPem, clusterCa.bundlePem, new Date(issued.notAfter.getTime() + 1000)),
      ),
    ).toBe('expired');
    expect(
      reason(() =>
        verifyCertificate(issued.certPem, clusterCa.bundlePem, new Date(issued.notBefore.getTime() - 1000)),
      ),
    ).toBe('not-yet-valid');
    // Same issuer name and key id, broken signature.
    const der = fromPem(issued.certPem, 'CERTIFICATE');
    der[der.length - 3] ^= 0x01;
    expect(reason(() => verifyCertificate(toPem('CERTIFICATE', der), clusterCa.bundlePem, NOW))).toBe(
      'signature',
    );
    expect(reason(() => verifyCertificate('nope', clusterCa.bundlePem, NOW))).toBe('malformed');
    // A bundle with both roots (e.g. during rotation) still verifies.
    expect(isCertificateValid(issued.certPem, clientCa.bundlePem + clusterCa.bundlePem, NOW)).toBe(true);
    expect(isCertificateValid(issued.certPem, clientCa.bundlePem, NOW)).toBe(false);
  });
});

describe('publicKeyFingerprint', () => {
  it('is the hex SHA-256 of the DER SPKI, independent of PEM layout', async () => {
    const { publicKeyPem } = await generateKeyPair();
    const der = createPublicKeyDer(publicKeyPem, 'spki');
    const expected = createHash('sha256').update(der).digest('hex');
    expect(publicKeyFingerprint(publicKeyPem)).toBe(expected);
    expect(publicKeyFingerprint(publicKeyPem.replace(/\n/g, '\r\n'))).toBe(expected);
  });
});

function createPublicKeyDer(pem: string, type: 'spki' | 'pkcs8'): Buffer {
  if (type === 'spki') return createPublicKey(pem).export({ type: 'spki', format: 'der' });
  return fromPem(pem, 'PRIVATE KEY');
}
