/** One debug line per plugin call: RPC, status, outcome and time taken. */
import type { RequestHandler } from 'express';
import type { Logger } from '../log.js';
import { noopMetrics, type Metrics } from '../observability/metrics.js';
import { describePath } from './error-reply.js';

export function logEachCall(logger: Logger, metrics: Metrics = noopMetrics): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    // Timed to the moment the reply is handed to the socket: 'finish' comes later, after work that the
    // answer set off (a background chain's spawn) has had the event loop, which Docker does not wait for.
    let answeredMs: number | undefined;
    res.once('prefinish', () => (answeredMs = performance.now() - started));
    res.on('finish', () => {
      const status = res.statusCode;
      const outcome = (res.locals['outcome'] as string | undefined) ?? (status < 400 ? 'ok' : 'rejected');
      const rpc = (res.locals['rpc'] as string | undefined) ?? describePath(req.path);
      const ms = answeredMs ?? performance.now() - started;
      metrics.rpcCall(rpc, outcome, ms / 1000);
      if (outcome !== 'ok') metrics.error('rpc', (res.locals['errorCode'] as string | undefined) ?? `http ${status}`);
      logger.debug({ rpc, status, outcome, ms: Math.round(ms * 10) / 10 }, 'plugin call');
    });
    next();
  };
}
