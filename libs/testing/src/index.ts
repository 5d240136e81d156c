export * from './etcd.js';
export * from './net.js';
export * from './docker.js';
export * from './kube.js';
export * from './orca-cluster.js';
export * from './https.js';
export * from './certs.js';
