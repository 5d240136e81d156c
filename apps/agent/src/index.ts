export * from './agent.js';
export * from './proxy.js';
export * from './https-json.js';
export * from './node-identity.js';
export * from './token-secret.js';
