// The configuration file arrives as TOML whatever the Content-Type says (curl --upload-file sends
// none, others send application/toml): read it as text before the controller's JSON parser runs,
// which then leaves the already-read body alone.
import { text } from 'express';
import { CONFIG_TOML_PATH } from './config.controller.js';

export { CONFIG_TOML_PATH };

export function configTomlBody() {
  return text({ type: () => true, limit: '1mb' });
}
