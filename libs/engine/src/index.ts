export * from './engine.js';
export * from './errors.js';
export * from './types.js';
export * from './tar.js';
