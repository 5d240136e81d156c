// UCP 3.0's configuration file (`/api/ucp/config-toml`): its tables, keys, types and defaults.
// Keys: ucp-api.md §5.1 (D30 admin/configure/ucp-configuration-file.md). Defaults: §1.3 for
// [auth.sessions] and §5.1 for controller_port, swarm_port, kv_timeout, kv_snapshot_count; the rest
// from Docker's configuration-key reference (docs/api-compatibility.md says which are guesses).
// Validation is by this one table, so every error names the full dotted key.
import { ApiError } from '@orca/api';

export type Field =
  | { kind: 'bool'; default: boolean }
  | { kind: 'int'; default: number; min: number; max: number }
  | { kind: 'string'; default: string; oneOf?: readonly string[]; pattern?: RegExp; what?: string }
  | { kind: 'strings'; default: readonly string[] }
  | { kind: 'table'; fields: Fields; optional?: boolean }
  | { kind: 'tables'; fields: Fields };

export type Fields = Readonly<Record<string, Field>>;

const bool = (value: boolean): Field => ({ kind: 'bool', default: value });
const int = (value: number, min: number, max = 2_147_483_647): Field => ({
  kind: 'int',
  default: value,
  min,
  max,
});
const str = (
  value = '',
  extra: { oneOf?: readonly string[]; pattern?: RegExp; what?: string } = {},
): Field => ({
  kind: 'string',
  default: value,
  ...extra,
});
const strings: Field = { kind: 'strings', default: [] };
// Go durations as UCP's metrics settings take them ("24h", "1m30s").
const DURATION = { pattern: /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/, what: 'a duration such as "24h"' };

/** The roles `default_new_user_role` may name (the built-in role ids, plus `admin`). */
export const NEW_USER_ROLES = ['admin', 'viewonly', 'scheduler', 'restrictedcontrol', 'fullcontrol'] as const;
export const LOG_LEVELS = ['DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERR', 'CRIT', 'ALERT', 'EMERG'] as const;

const LDAP_SERVER = {
  server_url: str(),
  no_simple_pagination: bool(false),
  start_tls: bool(false),
  root_certs: str(),
  tls_skip_verify: bool(false),
  reader_dn: str(),
  reader_password: str(),
} satisfies Record<string, Field>;

export const SCHEMA: Fields = {
  auth: {
    kind: 'table',
    fields: {
      backend: str('managed', { oneOf: ['managed', 'ldap'] }),
      default_new_user_role: str('restrictedcontrol', { oneOf: NEW_USER_ROLES }),
      sessions: {
        kind: 'table',
        fields: {
          lifetime_minutes: int(4320, 10),
          renewal_threshold_minutes: int(1440, 0),
          per_user_limit: int(5, 0),
        },
      },
      ldap: {
        kind: 'table',
        optional: true,
        fields: {
          ...LDAP_SERVER,
          sync_schedule: str(),
          jit_user_provisioning: bool(false),
          additional_domains: { kind: 'tables', fields: { domain: str(), ...LDAP_SERVER } },
          user_search_configs: {
            kind: 'tables',
            fields: {
              base_dn: str(),
              scope_subtree: bool(false),
              username_attr: str(),
              full_name_attr: str(),
              filter: str(),
              match_group: bool(false),
              match_group_dn: str(),
              match_group_member_attr: str(),
              match_group_iterate: bool(false),
            },
          },
          admin_sync_opts: {
            kind: 'table',
            fields: {
              enable_sync: bool(false),
              select_group_members: bool(false),
              group_dn: str(),
              group_member_attr: str(),
              search_base_dn: str(),
              search_scope_subtree: bool(false),
              search_filter: str(),
            },
          },
        },
      },
    },
  },
  registries: {
    kind: 'tables',
    fields: { host_address: str(), service_id: str(), ca_bundle: str() },
  },
  scheduling_configuration: {
    kind: 'table',
    fields: { enable_admin_ucp_scheduling: bool(true), enable_user_ucp_scheduling: bool(false) },
  },
  tracking_configuration: {
    kind: 'table',
    fields: {
      disable_usageinfo: bool(false),
      disable_tracking: bool(false),
      anonymize_tracking: bool(false),
    },
  },
  trust_configuration: {
    kind: 'table',
    fields: { require_content_trust: bool(false), require_signature_from: strings },
  },
  log_configuration: {
    kind: 'table',
    fields: {
      protocol: str('tcp', { oneOf: ['tcp', 'udp'] }),
      host: str(),
      level: str('INFO', { oneOf: LOG_LEVELS }),
    },
  },
  license_configuration: { kind: 'table', fields: { auto_refresh: bool(true) } },
  cluster_config: {
    kind: 'table',
    fields: {
      controller_port: int(443, 1, 65535),
      swarm_port: int(2376, 1, 65535),
      swarm_strategy: str('spread', { oneOf: ['spread', 'binpack', 'random'] }),
      dns: strings,
      dns_opt: strings,
      dns_search: strings,
      profiling_enabled: bool(false),
      kv_timeout: int(5000, 1),
      kv_snapshot_count: int(20000, 1),
      external_service_lb: str(),
      cni_installer_url: str(),
      metrics_retention_time: str('24h', DURATION),
      metrics_scrape_interval: str('1m', DURATION),
      metrics_disk_usage_interval: str('2h', DURATION),
      rethinkdb_cache_size: str('1GB', {
        pattern: /^(?:auto|\d+(?:[KMGT]B)?)$/,
        what: '"auto" or a size such as "1GB"',
      }),
      min_tls_version: str('TLSv1.2', { oneOf: ['TLSv1.0', 'TLSv1.1', 'TLSv1.2'] }),
      custom_kube_api_server_flags: strings,
      custom_kube_controller_manager_flags: strings,
      custom_kubelet_flags: strings,
      custom_kube_scheduler_flags: strings,
    },
  },
};

type Plain = Record<string, unknown>;

export class ConfigKeyError extends ApiError {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(400, 'INVALID_CONFIG', `${key}: ${problem}`, { key });
  }
}

const isTable = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkValue(key: string, field: Field, value: unknown): unknown {
  switch (field.kind) {
    case 'bool':
      if (typeof value !== 'boolean') throw new ConfigKeyError(key, 'must be true or false');
      return value;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value))
        throw new ConfigKeyError(key, 'must be an integer');
      if (value < field.min || value > field.max)
        throw new ConfigKeyError(key, `must be between ${field.min} and ${field.max}`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw new ConfigKeyError(key, 'must be a string');
      if (field.oneOf && !field.oneOf.includes(value))
        throw new ConfigKeyError(key, `must be one of ${field.oneOf.map((v) => `"${v}"`).join(', ')}`);
      if (field.pattern && !field.pattern.test(value))
        throw new ConfigKeyError(key, `must be ${field.what ?? 'well formed'}`);
      if (value.length > 65536) throw new ConfigKeyError(key, 'is too long');
      return value;
    case 'strings':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
        throw new ConfigKeyError(key, 'must be an array of strings');
      return [...value];
    case 'table':
      if (!isTable(value)) throw new ConfigKeyError(key, 'must be a table');
      return checkTable(key, field.fields, value);
    case 'tables':
      if (!Array.isArray(value) || !value.every(isTable))
        throw new ConfigKeyError(key, 'must be an array of tables');
      return value.map((item, i) => checkTable(`${key}[${i}]`, field.fields, item as Plain));
  }
}

/** Validates a table and fills in every default; unknown keys are refused. */
function checkTable(prefix: string, fields: Fields, table: Plain): Plain {
  const dotted = (name: string) => (prefix ? `${prefix}.${name}` : name);
  for (const name of Object.keys(table)) {
    if (!Object.hasOwn(fields, name)) throw new ConfigKeyError(dotted(name), 'unknown key');
  }
  const out: Plain = {};
  for (const [name, field] of Object.entries(fields)) {
    const value = table[name];
    if (value === undefined) {
      const fallback = defaultOf(field);
      if (fallback !== undefined) out[name] = fallback;
    } else {
      out[name] = checkValue(dotted(name), field, value);
    }
  }
  return out;
}

function defaultOf(field: Field): unknown {
  switch (field.kind) {
    case 'table':
      return field.optional ? undefined : checkTable('', field.fields, {});
    case 'tables':
      return [];
    case 'strings':
      return [...field.default];
    default:
      return field.default;
  }
}

export interface SessionsConfig {
  lifetime_minutes: number;
  renewal_threshold_minutes: number;
  per_user_limit: number;
}

export interface LdapServerConfig {
  server_url: string;
  no_simple_pagination: boolean;
  start_tls: boolean;
  root_certs: string;
  tls_skip_verify: boolean;
  reader_dn: string;
  reader_password: string;
}

export interface UcpConfig {
  auth: {
    backend: 'managed' | 'ldap';
    default_new_user_role: (typeof NEW_USER_ROLES)[number];
    sessions: SessionsConfig;
    ldap?: LdapServerConfig & {
      sync_schedule: string;
      jit_user_provisioning: boolean;
      additional_domains: (LdapServerConfig & { domain: string })[];
      user_search_configs: {
        base_dn: string;
        scope_subtree: boolean;
        username_attr: string;
        full_name_attr: string;
        filter: string;
        match_group: boolean;
        match_group_dn: string;
        match_group_member_attr: string;
        match_group_iterate: boolean;
      }[];
      admin_sync_opts: {
        enable_sync: boolean;
        select_group_members: boolean;
        group_dn: string;
        group_member_attr: string;
        search_base_dn: string;
        search_scope_subtree: boolean;
        search_filter: string;
      };
    };
  };
  registries: { host_address: string; service_id: string; ca_bundle: string }[];
  scheduling_configuration: { enable_admin_ucp_scheduling: boolean; enable_user_ucp_scheduling: boolean };
  tracking_configuration: {
    disable_usageinfo: boolean;
    disable_tracking: boolean;
    anonymize_tracking: boolean;
  };
  trust_configuration: { require_content_trust: boolean; require_signature_from: string[] };
  log_configuration: { protocol: 'tcp' | 'udp'; host: string; level: (typeof LOG_LEVELS)[number] };
  license_configuration: { auto_refresh: boolean };
  cluster_config: {
    controller_port: number;
    swarm_port: number;
    swarm_strategy: 'spread' | 'binpack' | 'random';
    dns: string[];
    dns_opt: string[];
    dns_search: string[];
    profiling_enabled: boolean;
    kv_timeout: number;
    kv_snapshot_count: number;
    external_service_lb: string;
    cni_installer_url: string;
    metrics_retention_time: string;
    metrics_scrape_interval: string;
    metrics_disk_usage_interval: string;
    rethinkdb_cache_size: string;
    min_tls_version: 'TLSv1.0' | 'TLSv1.1' | 'TLSv1.2';
    custom_kube_api_server_flags: string[];
    custom_kube_controller_manager_flags: string[];
    custom_kubelet_flags: string[];
    custom_kube_scheduler_flags: string[];
  };
}

/**
 * A complete, valid configuration from a parsed document (TOML tables or stored JSON): missing
 * keys take their defaults; unknown keys, wrong types and out-of-range values throw a 400 naming
 * the key.
 */
export function validateUcpConfig(document: unknown): UcpConfig {
  if (!isTable(document)) throw new ConfigKeyError('(document)', 'must be a table');
  const config = checkTable('', SCHEMA, document) as unknown as UcpConfig;
  const sessions = config.auth.sessions;
  const given = (document.auth as Plain | undefined)?.sessions as Plain | undefined;
  // forms.SessionsConfig: the renewal threshold is at most the lifetime minus 5 minutes; when only
  // the lifetime is given, the default threshold shrinks to fit instead of failing.
  if (given?.renewal_threshold_minutes === undefined)
    sessions.renewal_threshold_minutes = Math.min(
      sessions.renewal_threshold_minutes,
      sessions.lifetime_minutes - 5,
    );
  if (sessions.renewal_threshold_minutes > sessions.lifetime_minutes - 5) {
    throw new ConfigKeyError(
      'auth.sessions.renewal_threshold_minutes',
      `must be at most lifetime_minutes - 5 (${sessions.lifetime_minutes - 5})`,
    );
  }
  // orca has no LDAP client: accepting the backend would lock every user out.
  if (config.auth.backend === 'ldap')
    throw new ConfigKeyError('auth.backend', 'LDAP is not supported by orca');
  return config;
}

/** The configuration with every default. */
export function defaultUcpConfig(): UcpConfig {
  return validateUcpConfig({});
}
