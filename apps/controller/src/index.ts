export * from './controller.js';
export * from './version.js';
