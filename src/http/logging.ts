/** One debug line per plugin call: RPC, status, outcome and time taken. */
import type { RequestHandler } from 'express';
import type { Logger } from '../log.js';
import { describePath } from './error-reply.js';

export function logEachCall(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const status = res.statusCode;
      const outcome = (res.locals['outcome'] as string | undefined) ?? (status < 400 ? 'ok' : 'rejected');
      logger.debug(
        {
          rpc: (res.locals['rpc'] as string | undefined) ?? describePath(req.path),
          status,
          outcome,
          ms: Math.round((performance.now() - started) * 10) / 10,
        },
        'plugin call',
      );
    });
    next();
  };
}
