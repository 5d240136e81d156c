export * from './etcd.js';
export * from './net.js';
export * from './docker.js';
