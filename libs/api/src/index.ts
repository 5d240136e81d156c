export * from './errors.js';
export * from './contract.js';
export * from './principal.js';
export * from './audit.js';
