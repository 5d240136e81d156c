export * from './dtr.js';
