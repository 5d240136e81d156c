export * from './adapter.js';
export * from './keys.js';
export * from './clients.js';
export * from './provider.js';
export * from './issuer.js';
