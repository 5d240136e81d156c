export * from './passwords.js';
export * from './accounts.js';
