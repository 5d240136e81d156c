export * from './errors.js';
export * from './version.js';
export * from './routes.js';
export * from './policy.js';
export * from './schedule.js';
export * from './engines.js';
export * from './frontdoor.js';
