// Node membership: join with a token and a CSR, renewal over mutual TLS, heartbeats, and the node
// list. Joining writes a PENDING certificate request; the leader's CertificateSigner signs it
// (swarmkit's IssueNodeCertificate / NodeCertificateStatus flow) and the joiner waits for ISSUED.
import { ApiError } from '@orca/api';
import {
  CsrInvalidError,
  parseCertificate,
  parseJoinToken,
  caDigestMatches,
  verifyCertificate,
  verifyCsr,
} from '@orca/pki';
import type { Store } from '@orca/store';
import type { CertificateAuthorityService } from './certificate-authority.service.js';
import { newId } from './ids.js';
import { waitForKey } from './informer.js';
import {
  keys,
  parseNodeKey,
  type ComponentState,
  type NodeCertRecord,
  type NodeFacts,
  type NodeRole,
  type NodeSpec,
  type NodeStatusRecord,
  type NodeView,
} from './model.js';

export const INVALID_TOKEN_MESSAGE = 'A valid join token is necessary to join this cluster';

export interface JoinRequest {
  token: string;
  csr: string;
  hostname: string;
  address: string;
  engineNodeId?: string;
  runtime?: 'docker' | 'process';
  facts?: NodeFacts;
}

export interface IssuedCertificate {
  nodeId: string;
  role: NodeRole;
  certificate: string;
  ca: string;
  notAfter: string;
}

export interface NodeServiceOptions {
  nodeDownAfterMs: number;
  /** How long a join or renewal waits for the leader to sign (swarmkit: 5 s per call, retried). */
  signTimeoutMs?: number;
}

const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
const ADDRESS = /^[0-9A-Fa-f.:]{2,45}$/;
const NODE_ID = /^[0-9a-z]{1,64}$/;

function requireString(body: Record<string, unknown>, field: string, pattern?: RegExp): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '') {
    throw new ApiError(400, 'INVALID_REQUEST', `${field} is required and must be a string`);
  }
  if (pattern && !pattern.test(value)) throw new ApiError(400, 'INVALID_REQUEST', `${field} is malformed`);
  return value;
}

export function parseJoinRequest(body: unknown): JoinRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'INVALID_REQUEST', 'the request body must be a JSON object');
  }
  const record = body as Record<string, unknown>;
  const engineNodeId = record.engineNodeId;
  if (engineNodeId !== undefined && (typeof engineNodeId !== 'string' || !NODE_ID.test(engineNodeId))) {
    throw new ApiError(400, 'INVALID_REQUEST', 'engineNodeId is malformed');
  }
  const runtime = record.runtime ?? 'docker';
  if (runtime !== 'docker' && runtime !== 'process') {
    throw new ApiError(400, 'INVALID_REQUEST', 'runtime must be docker or process');
  }
  return {
    facts: parseFacts(record.facts),
    token: requireString(record, 'token'),
    csr: requireString(record, 'csr'),
    hostname: requireString(record, 'hostname', HOSTNAME),
    address: requireString(record, 'address', ADDRESS),
    engineNodeId: engineNodeId as string | undefined,
    runtime,
  };
}

const ABSOLUTE_PATH = /^\/[A-Za-z0-9._/-]{0,4095}$/;

function parseFacts(raw: unknown): NodeFacts {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ApiError(400, 'INVALID_REQUEST', 'facts must be an object');
  }
  const facts = raw as Record<string, unknown>;
  const path = (field: string): string | undefined => {
    const value = facts[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !ABSOLUTE_PATH.test(value) || value.includes('/../')) {
      throw new ApiError(400, 'INVALID_REQUEST', `facts.${field} must be an absolute path`);
    }
    return value;
  };
  const command = facts.orcaCommand;
  if (
    command !== undefined &&
    (!Array.isArray(command) || command.some((part) => typeof part !== 'string'))
  ) {
    throw new ApiError(400, 'INVALID_REQUEST', 'facts.orcaCommand must be an array of strings');
  }
  return {
    engineSocket: path('engineSocket'),
    certsDir: path('certsDir'),
    orcaCommand: command as string[] | undefined,
  };
}

export function isValidNodeId(id: string): boolean {
  return NODE_ID.test(id);
}

export class NodeService {
  private readonly signTimeoutMs: number;

  constructor(
    private readonly store: Store,
    private readonly cas: CertificateAuthorityService,
    private readonly options: NodeServiceOptions,
  ) {
    this.signTimeoutMs = options.signTimeoutMs ?? 5000;
  }

  async join(request: JoinRequest): Promise<IssuedCertificate> {
    try {
      parseJoinToken(request.token);
    } catch {
      throw new ApiError(400, 'INVALID_JOIN_TOKEN', INVALID_TOKEN_MESSAGE);
    }
    const bundle = await this.cas.clusterBundle();
    if (!caDigestMatches(request.token, bundle)) {
      throw new ApiError(401, 'INVALID_JOIN_TOKEN', `${INVALID_TOKEN_MESSAGE}: the token is for another CA`);
    }
    const role = await this.cas.roleForToken(request.token);
    if (!role) throw new ApiError(401, 'INVALID_JOIN_TOKEN', INVALID_TOKEN_MESSAGE);
    this.checkCsr(request.csr);

    const spec: NodeSpec = {
      id: newId(),
      role,
      hostname: request.hostname,
      address: request.address,
      engineNodeId: request.engineNodeId,
      runtime: request.runtime ?? 'docker',
      facts: request.facts ?? {},
      createdAt: new Date().toISOString(),
    };
    const cert: NodeCertRecord = { state: 'PENDING', csrPem: request.csr, updatedAt: spec.createdAt };
    // The only place node records are created (as in swarmkit's IssueNodeCertificate).
    const created = await this.store.txn(
      [{ key: keys.nodeSpec(spec.id), target: 'createRevision', op: '=', value: 0 }],
      [
        { type: 'put', key: keys.nodeSpec(spec.id), value: JSON.stringify(spec) },
        { type: 'put', key: keys.nodeCert(spec.id), value: JSON.stringify(cert) },
      ],
    );
    if (!created.succeeded) throw new ApiError(409, 'NODE_EXISTS', 'node id collision, retry');
    return this.awaitIssued(spec.id, role, created.revision);
  }

  /** Renewal: authenticated by the node's current certificate, no token. */
  async renew(nodeId: string, peerCertPem: string | undefined, csr: unknown): Promise<IssuedCertificate> {
    const spec = await this.authenticateNode(nodeId, peerCertPem);
    if (typeof csr !== 'string' || csr === '') throw new ApiError(400, 'INVALID_REQUEST', 'csr is required');
    this.checkCsr(csr);
    const now = new Date().toISOString();
    const record: NodeCertRecord = { state: 'RENEW', csrPem: csr, updatedAt: now };
    const put = await this.store.put(keys.nodeCert(nodeId), JSON.stringify(record));
    return this.awaitIssued(nodeId, spec.role, put.revision);
  }

  /** The node whose certificate this is, after checking it chains to the cluster CA and names the node. */
  async authenticateNode(nodeId: string, peerCertPem: string | undefined): Promise<NodeSpec> {
    if (!peerCertPem) throw new ApiError(401, 'UNAUTHORIZED', 'a node certificate is required (mutual TLS)');
    const bundle = await this.cas.clusterBundle();
    try {
      verifyCertificate(peerCertPem, bundle);
    } catch (error) {
      throw new ApiError(401, 'UNAUTHORIZED', `certificate refused: ${(error as Error).message}`);
    }
    const subject = parseCertificate(peerCertPem).subject;
    if (subject.CN !== nodeId)
      throw new ApiError(403, 'FORBIDDEN', 'the certificate belongs to another node');
    const spec = await this.spec(nodeId);
    if (!spec) throw new ApiError(404, 'NODE_NOT_FOUND', `node ${nodeId} not found`);
    return spec;
  }

  private checkCsr(csr: string): void {
    try {
      verifyCsr(csr);
    } catch (error) {
      const reason = error instanceof CsrInvalidError ? error.message : 'the CSR cannot be parsed';
      throw new ApiError(400, 'INVALID_CSR', reason);
    }
  }

  private async awaitIssued(
    nodeId: string,
    role: NodeRole,
    fromRevision: number,
  ): Promise<IssuedCertificate> {
    let record: NodeCertRecord | undefined;
    try {
      record = await waitForKey<NodeCertRecord>(
        this.store,
        keys.nodeCert(nodeId),
        fromRevision,
        (value) => value?.state === 'ISSUED' || value?.state === 'FAILED',
        this.signTimeoutMs,
      );
    } catch {
      throw new ApiError(
        503,
        'CA_UNAVAILABLE',
        'the certificate was not signed in time; the CA leader may be unavailable',
      );
    }
    if (!record || record.state !== 'ISSUED' || !record.certPem || !record.notAfter) {
      throw new ApiError(500, 'SIGNING_FAILED', record?.error ?? 'signing failed');
    }
    return {
      nodeId,
      role,
      certificate: record.certPem,
      ca: await this.cas.clusterBundle(),
      notAfter: record.notAfter,
    };
  }

  async certificateStatus(nodeId: string): Promise<NodeCertRecord | undefined> {
    const kv = await this.store.get(keys.nodeCert(nodeId));
    if (!kv) return undefined;
    const { csrPem: _csr, ...rest } = JSON.parse(kv.value) as NodeCertRecord;
    return rest;
  }

  async spec(nodeId: string): Promise<NodeSpec | undefined> {
    const kv = await this.store.get(keys.nodeSpec(nodeId));
    return kv ? (JSON.parse(kv.value) as NodeSpec) : undefined;
  }

  async heartbeat(nodeId: string, status: Omit<NodeStatusRecord, 'heartbeatAt'>): Promise<void> {
    const record: NodeStatusRecord = { ...status, heartbeatAt: new Date().toISOString() };
    await this.store.put(keys.nodeStatus(nodeId), JSON.stringify(record));
  }

  async list(now = Date.now()): Promise<NodeView[]> {
    const listed = await this.store.range(keys.nodesPrefix);
    const byId = new Map<string, { spec?: NodeSpec; cert?: NodeCertRecord; status?: NodeStatusRecord }>();
    for (const kv of listed.kvs) {
      const parsed = parseNodeKey(kv.key);
      if (!parsed) continue;
      const entry = byId.get(parsed.id) ?? {};
      if (parsed.part === 'spec') entry.spec = JSON.parse(kv.value) as NodeSpec;
      if (parsed.part === 'cert') entry.cert = JSON.parse(kv.value) as NodeCertRecord;
      if (parsed.part === 'status') entry.status = JSON.parse(kv.value) as NodeStatusRecord;
      byId.set(parsed.id, entry);
    }
    const views: NodeView[] = [];
    for (const entry of byId.values()) {
      if (entry.spec) views.push(this.view(entry.spec, entry.cert, entry.status, now));
    }
    return views.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.id.localeCompare(b.id));
  }

  async get(nodeId: string, now = Date.now()): Promise<NodeView | undefined> {
    const spec = await this.spec(nodeId);
    if (!spec) return undefined;
    const [cert, status] = await Promise.all([
      this.store.get(keys.nodeCert(nodeId)),
      this.store.get(keys.nodeStatus(nodeId)),
    ]);
    return this.view(
      spec,
      cert ? (JSON.parse(cert.value) as NodeCertRecord) : undefined,
      status ? (JSON.parse(status.value) as NodeStatusRecord) : undefined,
      now,
    );
  }

  private view(
    spec: NodeSpec,
    cert: NodeCertRecord | undefined,
    status: NodeStatusRecord | undefined,
    now: number,
  ): NodeView {
    const last = status ? Date.parse(status.heartbeatAt) : undefined;
    const components: ComponentState[] = status?.components ?? [];
    return {
      id: spec.id,
      role: spec.role,
      hostname: spec.hostname,
      address: spec.address,
      engineNodeId: spec.engineNodeId,
      certificate: { state: cert?.state ?? 'PENDING', notAfter: cert?.notAfter },
      components,
      status: last !== undefined && now - last < this.options.nodeDownAfterMs ? 'Ready' : 'Down',
      lastHeartbeat: status?.heartbeatAt,
    };
  }
}
