export * from './clock.js';
export * from './docker-runtime.js';
export * from './process-runtime.js';
export * from './reconcile-node.js';
export * from './runtime.js';
export * from './spec.js';
export * from './work-queue.js';
