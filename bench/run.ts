// `npm run bench`: every benchmark, printing figures (never asserting on them).
import 'reflect-metadata';
import { benchFrontDoor } from './frontdoor.js';
import { benchJoin } from './join.js';
import { benchKube } from './kube.js';
import { benchSigning } from './pki-sign.js';
import { benchRbac } from './rbac.js';
import { benchRegistry } from './registry.js';
import { benchStore } from './store.js';

await benchSigning();
await benchJoin();
await benchRbac();
await benchStore();
await benchFrontDoor();
await benchKube();
await benchRegistry();
