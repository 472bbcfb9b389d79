export * from './types.js';
export * from './validate.js';
export * from './version.js';
export * from './conf.js';
export * from './exec.js';
export * from './cache.js';
export * from './runtime.js';
export * from './ranges.js';
