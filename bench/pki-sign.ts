// Node certificate signing throughput of @orca/pki, next to the stock @peculiar/x509 + WebCrypto
// path it replaced (the baseline needs reflect-metadata loaded before @peculiar/x509).
import 'reflect-metadata';
import * as px from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { cpus } from 'node:os';
import { CertificateAuthority, createCsr, createRootCa, generateKeyPair, verifyCsr } from '@orca/pki';

const POOL = 1024;

interface Result {
  label: string;
  count: number;
  seconds: number;
}

async function timed(label: string, seconds: number, step: (i: number) => Promise<unknown>): Promise<Result> {
  for (let i = 0; i < 50; i++) await step(i); // warm up
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let count = 0;
  while (performance.now() < deadline) {
    await step(count);
    count++;
  }
  return { label, count, seconds: (performance.now() - start) / 1000 };
}

function print(r: Result, cores: number): void {
  const rate = r.count / r.seconds;
  console.log(
    `pki-sign: ${r.label}: ${rate.toFixed(0)}/s (${r.count} in ${r.seconds.toFixed(2)} s, 1 thread, ${cores} cores)`,
  );
}

/** Signs node certificates for ~`seconds` per figure and prints one line per figure. */
export async function benchSigning(seconds = 3): Promise<void> {
  const cores = cpus().length;
  const ca = new CertificateAuthority(await createRootCa({ commonName: 'swarm-ca' }));

  // Distinct keys and CSRs, made outside the timed loops; nothing is cached per key, so cycling
  // through the pool costs the same as fresh requests.
  const pool = await Promise.all(
    Array.from({ length: POOL }, async () => {
      const keys = await generateKeyPair();
      return { ...keys, csrPem: await createCsr(keys) };
    }),
  );
  const nodeId = (i: number) => `node${i.toString(36).padStart(21, '0')}`;

  const results: Result[] = [];
  // Same subject, SANs and extensions as a manager node certificate, from the SPKI directly.
  results.push(
    await timed('orca sign only (node:crypto, no CSR)', seconds, (i) =>
      ca.issueServerCertificate({
        publicKeyPem: pool[i % POOL]!.publicKeyPem,
        commonName: nodeId(i),
        organization: 'cluster',
        hosts: ['swarm-manager', nodeId(i), 'swarm-ca', '127.0.0.2'],
        validityMs: 90 * 86_400_000,
      }),
    ),
  );
  results.push(
    await timed('orca issueNodeCertificate incl. CSR verify', seconds, (i) =>
      ca.issueNodeCertificate({
        csrPem: pool[i % POOL]!.csrPem,
        nodeId: nodeId(i),
        role: 'swarm-manager',
        clusterId: 'cluster',
        hosts: ['127.0.0.2'],
      }),
    ),
  );
  results.push(await timed('orca CSR verify only', seconds, async (i) => verifyCsr(pool[i % POOL]!.csrPem)));

  // Baseline: the stock generator with WebCrypto signing (CryptoKey imported once).
  const crypto = webcrypto as unknown as NonNullable<
    Parameters<typeof px.X509CertificateGenerator.create>[1]
  >;
  // Its own root: the CA class keeps its key private.
  const caMaterial = await createRootCa({ commonName: 'swarm-ca' });
  const pkcs8 = Buffer.from(caMaterial.keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    pkcs8,
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const caCert = new px.X509Certificate(caMaterial.certPem);
  const issuer = caCert.subjectName;
  const aki = new px.AuthorityKeyIdentifierExtension(
    caCert.getExtension(px.SubjectKeyIdentifierExtension)!.keyId,
  );
  const csrs = pool.map((p) => new px.Pkcs10CertificateRequest(p.csrPem));
  const stock = async (i: number, verify: boolean) => {
    const csr = verify ? new px.Pkcs10CertificateRequest(pool[i % POOL]!.csrPem) : csrs[i % POOL]!;
    if (verify && !(await csr.verify(crypto))) throw new Error('CSR does not verify');
    const now = Date.now();
    return px.X509CertificateGenerator.create(
      {
        subject: [{ O: ['cluster'] }, { OU: ['swarm-manager'] }, { CN: [nodeId(i)] }],
        issuer,
        publicKey: csr.publicKey,
        signingKey: signingKey as never,
        notBefore: new Date(now - 3_600_000),
        notAfter: new Date(now + 90 * 86_400_000),
        extensions: [
          new px.KeyUsagesExtension(
            px.KeyUsageFlags.digitalSignature | px.KeyUsageFlags.keyEncipherment,
            true,
          ),
          new px.ExtendedKeyUsageExtension([px.ExtendedKeyUsage.serverAuth, px.ExtendedKeyUsage.clientAuth]),
          new px.BasicConstraintsExtension(false, undefined, true),
          aki,
          await px.SubjectKeyIdentifierExtension.create(csr.publicKey, false, crypto),
          new px.SubjectAlternativeNameExtension([
            { type: 'dns', value: 'swarm-manager' },
            { type: 'dns', value: nodeId(i) },
            { type: 'dns', value: 'swarm-ca' },
            { type: 'ip', value: '127.0.0.2' },
          ]),
        ],
      },
      crypto,
    );
  };
  results.push(await timed('baseline @peculiar/x509 + WebCrypto sign only', seconds, (i) => stock(i, false)));
  results.push(
    await timed('baseline @peculiar/x509 + WebCrypto incl. CSR verify', seconds, (i) => stock(i, true)),
  );

  for (const r of results) print(r, cores);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchSigning();
}
