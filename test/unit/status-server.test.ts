import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatusServer } from '../../src/status/status-server.ts';
import type { StatusDocument } from '../../src/status/status-document.ts';
import { memoryLogger } from '../support/log-sink.ts';

/** What the server does with clients that are not `village-edge status`, on a real unix socket. */

/**
 * Connects, sends `request` (if any), and resolves with everything read once the connection closes. A reset
 * (the server dropping a client mid-write) is a close like any other here.
 */
function exchange(path: string, request?: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => request !== undefined && socket.write(request));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => resolve(text));
    socket.on('error', () => {});
  });
}

describe('StatusServer', () => {
  let dir: string;
  let path: string;
  let server: StatusServer | undefined;
  const { logger, lines } = memoryLogger();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 've-status-server-'));
    path = join(dir, 'status.sock');
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const serve = async (document: () => Promise<StatusDocument>, requestTimeoutMs?: number) => {
    server = new StatusServer({ path, document, logger, ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }) });
    await server.start();
  };
  const never = () => Promise.reject(new Error('not asked for'));

  it('answers an unknown request with an error line and closes', async () => {
    await serve(never);
    const answer = JSON.parse(await exchange(path, 'restart\n')) as { error: string };
    expect(answer.error).toMatch(/unknown request "restart"/);
  });

  it('says what went wrong when the document cannot be built', async () => {
    await serve(() => Promise.reject(new Error('sensor on fire')));
    const answer = JSON.parse(await exchange(path, 'status\n')) as { error: string };
    expect(answer.error).toContain('sensor on fire');
    expect(lines.some((l) => l.msg === 'status document could not be built')).toBe(true);
  });

  it('drops a client that sends nothing, and one that sends a line longer than a request', async () => {
    await serve(never, 200);
    expect(await exchange(path)).toBe('');
    expect(await exchange(path, 'x'.repeat(1000))).toBe('');
  });

  it('leaves a file that is not a socket alone and does not start', async () => {
    writeFileSync(path, 'notes');
    server = new StatusServer({ path, document: never, logger });
    await expect(server.start()).rejects.toThrow(/is not a socket/);
    expect(readFileSync(path, 'utf8')).toBe('notes');
  });

  it('removes its socket file on stop', async () => {
    await serve(never);
    expect(existsSync(path)).toBe(true);
    await server!.stop();
    expect(existsSync(path)).toBe(false);
  });
});
