import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Route = (request: IncomingMessage, response: ServerResponse) => void;

export interface ServedRequest {
  path: string;
  /** The Range header as sent, if any. */
  range: string | undefined;
  /** Resolves when the connection the request came on is closed (by either side). */
  closed: Promise<void>;
}

export interface MediaServer {
  /** `http://127.0.0.1:PORT/path` (or https://). */
  url(path: string): string;
  /** Scripts what a path answers; a path never scripted answers 404. */
  route(path: string, route: Route): void;
  requestsFor(path: string): ServedRequest[];
  close(): Promise<void>;
}

/** A real media server on 127.0.0.1, answering each path as a test scripts it; https when given a certificate. */
export async function startMediaServer(tls?: { cert: Buffer; key: Buffer }): Promise<MediaServer> {
  const routes = new Map<string, Route>();
  const requests: ServedRequest[] = [];
  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const path = request.url ?? '/';
    const closed = new Promise<void>((resolve) => request.socket.once('close', () => resolve()));
    requests.push({ path, range: request.headers.range, closed });
    const route = routes.get(path);
    if (route !== undefined) return route(request, response);
    response.writeHead(404, { 'content-type': 'text/plain' }).end('no such file');
  };
  const server: Server = tls === undefined ? createHttpServer(handle) : createHttpsServer(tls, handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}${path}`,
    route: (path, route) => routes.set(path, route),
    requestsFor: (path) => requests.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The file, honouring `Range: bytes=N-` with a 206 (a 416 past its end) unless told to ignore it. */
export function serveFile(body: Buffer, range: 'honour' | 'ignore' | 'refuse' = 'honour'): Route {
  return (request, response) => {
    const asked = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    if (asked === null || range === 'ignore') {
      response.writeHead(200, { 'content-length': body.length }).end(body);
      return;
    }
    const start = Number(asked[1]);
    if (range === 'refuse' || start >= body.length) {
      response.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    response.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    response.end(body.subarray(start));
  };
}

/**
 * Headers for the whole file and its first `at` bytes, then the connection is cut (once `beforeCut` resolves);
 * later requests get `serveFile`.
 */
export function cutOnceAt(body: Buffer, at: number, beforeCut: () => Promise<unknown> = () => Promise.resolve()): Route {
  let cut = false;
  const rest = serveFile(body);
  return (request, response) => {
    if (cut) return rest(request, response);
    cut = true;
    response.writeHead(200, { 'content-length': body.length });
    response.write(body.subarray(0, at));
    void beforeCut().finally(() => request.socket.end());
  };
}

/** Headers for the whole file and its first `at` bytes, then nothing, with the connection held open. */
export function stallAt(body: Buffer, at: number): Route {
  return (_request, response) => {
    response.writeHead(200, { 'content-length': body.length });
    response.write(body.subarray(0, at));
  };
}

/** The body in chunked encoding, so no Content-Length says how long it will be. */
export function serveChunked(body: Buffer): Route {
  return (_request, response) => {
    response.writeHead(200, { 'content-type': 'audio/mpeg' });
    response.write(body);
    response.end();
  };
}
