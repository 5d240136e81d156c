export * from './passwords.js';
export * from './accounts.js';
export * from './directory.js';
export * from './sessions.js';
export * from './authenticator.js';
export * from './bundle.js';
