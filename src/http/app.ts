/**
 * The HTTP face of the plugin: one POST route per libnetwork RPC, each of which
 * reads the body as JSON, validates it with the schema from docker/api.ts and
 * hands it to a driver. No driver logic lives here.
 *
 * Wire rules this layer enforces (libnetwork's remote-driver protocol):
 * - Docker sends no Content-Type and sometimes no body, so every body is read
 *   raw and parsed as JSON here; an empty body means `{}`.
 * - Every non-2xx reply is `{"Err": message}`; Docker shows Err verbatim.
 * - 404 means "method not implemented" to Docker, so it is reserved for routes
 *   we really do not implement and is never produced by a driver error.
 */
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { IpamDriverApi, NetworkDriverApi } from '../docker/api.js';
import { MAX_BODY_BYTES } from '../docker/api.js';
import type { Logger } from '../log.js';
import { parseJsonBody } from './body.js';
import { NotImplementedError, describePath, errorReplier, sendJson } from './error-reply.js';
import { logEachCall } from './logging.js';
import { buildRoutes, rpcName } from './routes.js';

export { MAX_JSON_DEPTH } from './body.js';

export interface AppDeps {
  network: NetworkDriverApi;
  ipam: IpamDriverApi;
  logger: Logger;
}

export function createApp(deps: AppDeps): express.Express {
  const { network, ipam, logger } = deps;
  const app = express();
  // Docker's paths are exact; do not let "/plugin.activate/" alias a real route.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.set('x-powered-by', false);
  app.set('etag', false);

  app.use(logEachCall(logger));
  const replyWithError = errorReplier(logger);

  const readRawBody = express.raw({ type: () => true, limit: MAX_BODY_BYTES, inflate: false });

  for (const route of buildRoutes(network, ipam)) {
    const tagRpc: RequestHandler = (_req, res, next) => {
      // Set before the body is read so that body-read failures are reported under the RPC's name too.
      res.locals['rpc'] = rpcName(route.path);
      next();
    };
    app.post(route.path, tagRpc, readRawBody, async (req: Request, res: Response) => {
      try {
        const result = await route.handle(parseJsonBody(req.body));
        sendJson(res, 200, result ?? {});
      } catch (err) {
        // Handled here rather than by rejecting to express, which would turn a
        // thrown `undefined` into an anonymous "Rejected promise".
        replyWithError(err, req, res);
      }
    });
    app.all(route.path, (req: Request, res: Response) => {
      res.set('Allow', 'POST');
      sendJson(res, 405, { Err: `${rpcName(route.path)}: method ${req.method} not allowed, use POST` });
    });
  }

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new NotImplementedError(`${describePath(req.path)}: not implemented`));
  });

  // Body-read failures (413, 415, aborted uploads) and unknown paths arrive here.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => replyWithError(err, req, res));
  return app;
}
