/**
 * The engine harness's public face: tests (and test/run.mjs, bench/) import
 * from here. Each concern lives in its own module:
 *   common.ts             paths, docker client binary, test image, names, waitFor
 *   docker-cli.ts         the docker CLI wrapper (any daemon socket)
 *   subnets.ts            subnet arithmetic and free subnets
 *   host-links.ts         links seen from the host and inside containers
 *   plugin-child.ts       docker-cni as a child process (stop, kill, CLI)
 *   plugin-launcher.ts    the plugin under test in child/killable/managed/external mode
 *   engine-prereq.ts      prerequisites and the test image
 *   engine-case.ts        per-test scope, cleanup and leak check
 *   network-removal.ts    `docker network rm`, with Docker 20.10's endpoint-count repair
 *   host-snapshot.ts      the leak snapshot
 *   leftovers.ts          what one removed endpoint left; diagnostics
 *   processes.ts, dockerd-process.ts, dockerd-under-test.ts, dockerd-log.ts
 *                         processes, a dockerd to kill and restart, its log
 */
export * from './common.js';
export * from './docker-cli.js';
export * from './subnets.js';
export * from './host-links.js';
export * from './plugin-child.js';
export * from './plugin-launcher.js';
export * from './engine-prereq.js';
export * from './engine-case.js';
export { removeNetwork } from './network-removal.js';
export { assertNoLeaks, takeSnapshot } from './host-snapshot.js';
