// DTR 2.5 promotion policies (SW25 CreateRepoPromotionPolicy): rules on a pushed tag decide
// whether the image is copied into another repository under a templated tag. The copy links the
// same content-addressed blobs and manifest into the target (nothing is stored twice) and is made
// only if the policy's author still may push to the target. No scanner exists yet, so every
// vulnerability count is 0 and license/package lists are empty when rules are evaluated.
import { ApiError } from '@orca/api';
import type { Store } from '@orca/store';
import { randomUUID } from 'node:crypto';
import type { AccessSubject, RepositoryAccessResolver } from './access.js';
import { levelAllows } from './access.js';
import type { BlobStore } from './blob-store.js';
import { checkDigest, isValidTag, parseRepositoryName, type RepositoryName } from './grammar.js';
import { parseManifest } from './manifest.js';
import type { ManifestRecord, RegistryMetadata } from './metadata.js';

const ROOT = '/orca/v1/dtr/';
export const promotionKeys = {
  policy: (source: RepositoryName, id: string) => `${ROOT}promotionpolicies/${source.full}/${id}`,
  policies: (source: RepositoryName) => `${ROOT}promotionpolicies/${source.full}/`,
  all: () => `${ROOT}promotionpolicies/`,
};

export interface Rule {
  field: string;
  operator: string;
  values: string[];
}

const TAG_OPERATORS = ['eq', 'sw', 'ew', 'c', 'oo', 'noo'];
const LIST_OPERATORS = ['oo', 'noo'];
const NUMBER_OPERATORS = ['gte', 'gt', 'eq', 'neq', 'lte', 'lt'];
const RULE_FIELDS: Record<string, string[]> = {
  tag: TAG_OPERATORS,
  'license.name': LIST_OPERATORS,
  'package.name': LIST_OPERATORS,
  vulnerability_all: NUMBER_OPERATORS,
  vulnerability_critical: NUMBER_OPERATORS,
  vulnerability_major: NUMBER_OPERATORS,
  vulnerability_minor: NUMBER_OPERATORS,
};

/** What rules are evaluated against. */
export interface ImageFacts {
  tag: string;
  licenses: string[];
  packages: string[];
  vulnerabilities: { all: number; critical: number; major: number; minor: number };
}

/** Facts for an unscanned image: orca has no scanner, so no licenses, packages or vulnerabilities. */
export const unscannedFacts = (tag: string): ImageFacts => ({
  tag,
  licenses: [],
  packages: [],
  vulnerabilities: { all: 0, critical: 0, major: 0, minor: 0 },
});

export function parseRules(raw: unknown): Rule[] {
  if (!Array.isArray(raw)) throw new ApiError(400, 'INVALID_PARAMETERS', 'rules must be an array');
  return raw.map((r: unknown, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r))
      throw new ApiError(400, 'INVALID_PARAMETERS', `rules[${i}] must be an object`);
    const { field, operator, values } = r as Record<string, unknown>;
    if (typeof field !== 'string' || !(field in RULE_FIELDS))
      throw new ApiError(400, 'INVALID_PARAMETERS', `rules[${i}].field is not a rule field`);
    if (typeof operator !== 'string' || !RULE_FIELDS[field]!.includes(operator))
      throw new ApiError(400, 'INVALID_PARAMETERS', `rules[${i}].operator is not valid for ${field}`);
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))
      throw new ApiError(400, 'INVALID_PARAMETERS', `rules[${i}].values must be an array of strings`);
    if (values.length === 0) throw new ApiError(400, 'INVALID_PARAMETERS', `rules[${i}].values is empty`);
    if (
      NUMBER_OPERATORS.includes(operator) &&
      field !== 'tag' &&
      !values.every((v) => /^\d+$/.test(v as string))
    )
      throw new ApiError(400, 'INVALID_PARAMETERS', `rules[${i}].values must be whole numbers`);
    return { field, operator, values: values as string[] };
  });
}

function matchText(operator: string, value: string, values: string[]): boolean {
  switch (operator) {
    case 'eq':
      return value === values[0];
    case 'sw':
      return value.startsWith(values[0]!);
    case 'ew':
      return value.endsWith(values[0]!);
    case 'c':
      return value.includes(values[0]!);
    case 'oo':
      return values.includes(value);
    case 'noo':
      return !values.includes(value);
    default:
      return false;
  }
}

function matchList(operator: string, present: string[], values: string[]): boolean {
  const any = present.some((p) => values.includes(p));
  return operator === 'oo' ? any : !any;
}

function matchNumber(operator: string, value: number, values: string[]): boolean {
  const limit = Number(values[0]);
  switch (operator) {
    case 'gte':
      return value >= limit;
    case 'gt':
      return value > limit;
    case 'eq':
      return value === limit;
    case 'neq':
      return value !== limit;
    case 'lte':
      return value <= limit;
    case 'lt':
      return value < limit;
    default:
      return false;
  }
}

/** Every rule must hold (DTR ANDs a policy's rules); no rules matches every push. */
export function rulesMatch(rules: readonly Rule[], facts: ImageFacts): boolean {
  return rules.every((rule) => {
    if (rule.field === 'tag') return matchText(rule.operator, facts.tag, rule.values);
    if (rule.field === 'license.name') return matchList(rule.operator, facts.licenses, rule.values);
    if (rule.field === 'package.name') return matchList(rule.operator, facts.packages, rule.values);
    const kind = rule.field.slice('vulnerability_'.length) as keyof ImageFacts['vulnerabilities'];
    return matchNumber(rule.operator, facts.vulnerabilities[kind], rule.values);
  });
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Expands a tag template (%n and the strftime-like symbols SW25 lists), in UTC. */
export function expandTagTemplate(template: string, tag: string, at: Date): string {
  const startOfYear = Date.UTC(at.getUTCFullYear(), 0, 1);
  const dayOfYear = Math.floor((at.getTime() - startOfYear) / 86_400_000) + 1;
  // %W: weeks start on Monday; days before the year's first Monday are week 0 (strftime).
  const mondayBased = (at.getUTCDay() + 6) % 7;
  const week = Math.floor((dayOfYear - 1 + 7 - mondayBased) / 7);
  const hour12 = at.getUTCHours() % 12 === 0 ? 12 : at.getUTCHours() % 12;
  const symbols: Record<string, string> = {
    n: tag,
    A: DAYS[at.getUTCDay()]!,
    a: DAYS[at.getUTCDay()]!.slice(0, 3),
    w: String(at.getUTCDay()),
    d: pad(at.getUTCDate()),
    B: MONTHS[at.getUTCMonth()]!,
    b: MONTHS[at.getUTCMonth()]!.slice(0, 3),
    m: pad(at.getUTCMonth() + 1),
    Y: String(at.getUTCFullYear()),
    y: pad(at.getUTCFullYear() % 100),
    H: pad(at.getUTCHours()),
    I: pad(hour12),
    p: at.getUTCHours() < 12 ? 'AM' : 'PM',
    M: pad(at.getUTCMinutes()),
    S: pad(at.getUTCSeconds()),
    f: pad(at.getUTCMilliseconds() * 1000, 6),
    Z: 'UTC',
    j: pad(dayOfYear, 3),
    W: pad(week),
  };
  return template.replace(/%(.)/g, (whole, symbol: string) => symbols[symbol] ?? whole);
}

/** A template that can expand to a valid tag; checked with a sample tag. */
export function checkTagTemplate(raw: unknown): string {
  if (typeof raw !== 'string' || raw === '')
    throw new ApiError(400, 'INVALID_PARAMETERS', 'tagTemplate must be a non-empty string');
  const unknown = /%([^nAawdBbmYyHIpMSfZjW])/.exec(raw);
  if (unknown) throw new ApiError(400, 'INVALID_PARAMETERS', `tagTemplate symbol %${unknown[1]} is unknown`);
  if (!isValidTag(expandTagTemplate(raw, 'latest', new Date())))
    throw new ApiError(400, 'INVALID_TAG_NAME', 'tagTemplate does not produce a valid tag');
  return raw;
}

export interface PromotionPolicyRecord {
  id: string;
  sourceRepository: string;
  targetRepository: string;
  tagTemplate: string;
  rules: Rule[];
  enabled: boolean;
  lastPromotedAt: string;
  /** Whose permissions the promotion runs with. */
  authorId: string;
  authorName: string;
}

export function promotionPolicyView(p: PromotionPolicyRecord) {
  return {
    id: p.id,
    sourceRepository: p.sourceRepository,
    targetRepository: p.targetRepository,
    tagTemplate: p.tagTemplate,
    rules: p.rules,
    enabled: p.enabled,
    lastPromotedAt: p.lastPromotedAt,
  };
}

export class PromotionPolicies {
  constructor(private readonly store: Store) {}

  async list(source: RepositoryName): Promise<PromotionPolicyRecord[]> {
    const { kvs } = await this.store.range(promotionKeys.policies(source));
    return kvs.map((kv) => JSON.parse(kv.value) as PromotionPolicyRecord);
  }

  /** Policies whose target is `target` (the `?source=false` listing). */
  async targeting(target: RepositoryName): Promise<PromotionPolicyRecord[]> {
    const { kvs } = await this.store.range(promotionKeys.all());
    return kvs
      .map((kv) => JSON.parse(kv.value) as PromotionPolicyRecord)
      .filter((p) => p.targetRepository === target.full);
  }

  async get(source: RepositoryName, id: string): Promise<PromotionPolicyRecord | undefined> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
    const kv = await this.store.get(promotionKeys.policy(source, id));
    return kv ? (JSON.parse(kv.value) as PromotionPolicyRecord) : undefined;
  }

  async put(record: PromotionPolicyRecord): Promise<void> {
    const source = parseRepositoryName(record.sourceRepository)!;
    await this.store.put(promotionKeys.policy(source, record.id), JSON.stringify(record));
  }

  async create(fields: Omit<PromotionPolicyRecord, 'id' | 'lastPromotedAt'>): Promise<PromotionPolicyRecord> {
    const record = { ...fields, id: randomUUID(), lastPromotedAt: '0001-01-01T00:00:00Z' };
    await this.put(record);
    return record;
  }

  async delete(source: RepositoryName, id: string): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return false;
    return (await this.store.delete(promotionKeys.policy(source, id))).deleted > 0;
  }
}

/** Copies a manifest (and, for an index, its child manifests) with its blob links into `target`. */
export async function linkImage(
  metadata: RegistryMetadata,
  blobs: BlobStore,
  source: RepositoryName,
  target: RepositoryName,
  record: ManifestRecord,
  tag: string | undefined,
  author: string,
  depth = 0,
): Promise<void> {
  const digest = checkDigest(record.digest);
  if (!digest.ok || depth > 2) throw new Error(`cannot copy manifest ${record.digest}`);
  const body = await blobs.readSmall(digest.digest);
  if (!body) throw new Error(`manifest ${record.digest} has no content`);
  const parsed = parseManifest(record.mediaType, body);
  for (const child of parsed.children) {
    const childRecord = await metadata.manifest(source, child.digest);
    if (!childRecord) throw new Error(`manifest ${child.digest} is not in ${source.full}`);
    await linkImage(metadata, blobs, source, target, childRecord, undefined, author, depth + 1);
  }
  // As a push does: touch first (a running GC then keeps these blobs, or has already unlinked them
  // and the checks below fail), and commit only if no GC swept them meanwhile.
  const guard = await metadata.touchBlobs([
    record.digest,
    ...parsed.blobs.map((b) => b.digest),
    ...parsed.children.map((c) => c.digest),
  ]);
  for (const blob of parsed.blobs) {
    const link = await metadata.blobLink(source, blob.digest);
    if (!link) throw new Error(`blob ${blob.digest} is not in ${source.full}`);
    if (!(await metadata.linkBlob(target, blob.digest, link.size, guard)))
      throw new Error(`blob ${blob.digest} was garbage collected during the copy`);
  }
  const recorded = await metadata.putManifest(
    target,
    { ...record, createdAt: new Date().toISOString(), author },
    tag,
    guard,
  );
  if (!recorded)
    throw new Error(`manifest ${record.digest} lost a blob to garbage collection during the copy`);
}

export interface PromotionOutcome {
  policy: PromotionPolicyRecord;
  target: RepositoryName;
  tag: string;
}

/** Evaluates a source repository's policies for one pushed tag and promotes where they match. */
export class PromotionEngine {
  constructor(
    private readonly options: {
      policies: PromotionPolicies;
      metadata: RegistryMetadata;
      blobs: BlobStore;
      access: RepositoryAccessResolver;
      subject(id: string, name: string): Promise<AccessSubject | undefined>;
      onPromoted?(
        outcome: PromotionOutcome & { source: RepositoryName; sourceTag: string; digest: string },
      ): void;
      log?: { error(message: string): void };
    },
  ) {}

  async evaluate(
    source: RepositoryName,
    tag: string,
    only?: PromotionPolicyRecord,
  ): Promise<PromotionOutcome[]> {
    const { metadata } = this.options;
    const tagRecord = await metadata.tag(source, tag);
    const record = tagRecord ? await metadata.manifest(source, tagRecord.digest) : undefined;
    if (!record) return [];
    const policies = only ? [only] : await this.options.policies.list(source);
    const done: PromotionOutcome[] = [];
    for (const policy of policies) {
      if (!policy.enabled || !rulesMatch(policy.rules, unscannedFacts(tag))) continue;
      const target = parseRepositoryName(policy.targetRepository);
      if (!target || !(await metadata.repository(target))) {
        this.options.log?.error(`promotion ${policy.id}: target ${policy.targetRepository} does not exist`);
        continue;
      }
      const subject = await this.options.subject(policy.authorId, policy.authorName);
      if (!levelAllows((await this.options.access.decide(subject, target)).level, 'read-write')) {
        this.options.log?.error(`promotion ${policy.id}: its author may no longer push to ${target.full}`);
        continue;
      }
      const at = new Date();
      const targetTag = expandTagTemplate(policy.tagTemplate, tag, at);
      if (!isValidTag(targetTag)) continue;
      await linkImage(metadata, this.options.blobs, source, target, record, targetTag, policy.authorName);
      const updated = { ...policy, lastPromotedAt: at.toISOString() };
      if (await this.options.policies.get(source, policy.id)) await this.options.policies.put(updated);
      done.push({ policy: updated, target, tag: targetTag });
      this.options.onPromoted?.({
        policy: updated,
        target,
        tag: targetTag,
        source,
        sourceTag: tag,
        digest: record.digest,
      });
    }
    return done;
  }
}
