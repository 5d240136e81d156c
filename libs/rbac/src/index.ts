export * from './operations.js';
export * from './keys.js';
export * from './roles.js';
export * from './collections.js';
export * from './grants.js';
export * from './authorize.js';
