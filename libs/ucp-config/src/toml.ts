// The TOML side of the configuration file: parse (with line and column on errors, never echoing
// the document, which may hold an LDAP reader password) and render in UCP's table order.
import { ApiError } from '@orca/api';
import { parse, stringify, TomlError } from 'smol-toml';
import { validateUcpConfig, type UcpConfig } from './schema.js';

/** Parses and validates a TOML document; 400 with the offending key (or line) on any problem. */
export function parseUcpConfigToml(text: string): UcpConfig {
  let document: unknown;
  try {
    document = parse(text, { unsafeKeyBehaviour: 'throw', maxDepth: 16 });
  } catch (error) {
    // smol-toml's message ends with a code excerpt: keep only the first line.
    const first = error instanceof Error ? (error.message.split('\n')[0] ?? '') : '';
    const reason = first.replace(/^Invalid TOML document: /, '') || 'invalid document';
    if (!(error instanceof TomlError)) throw new ApiError(400, 'INVALID_CONFIG', `invalid TOML: ${reason}`);
    const where = `line ${error.line}, column ${error.column}`;
    throw new ApiError(400, 'INVALID_CONFIG', `invalid TOML at ${where}: ${reason}`, {
      line: error.line,
      column: error.column,
    });
  }
  return validateUcpConfig(document);
}

export function renderUcpConfigToml(config: UcpConfig): string {
  return stringify(config);
}
