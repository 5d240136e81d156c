export * from './schema.js';
export * from './toml.js';
export * from './store.js';
