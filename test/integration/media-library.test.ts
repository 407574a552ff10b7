import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mediaLibraryFile } from '../../src/contract/schedule.ts';
import { partName } from '../../src/media/media-download.ts';
import { FileMediaLibrary, type FileMediaLibraryOptions, type MediaLibraryState } from '../../src/media/media-library.ts';
import type { MediaCheck, MediaNeed } from '../../src/schedule/types.ts';
import { cutOnceAt, serveChunked, serveFile, stallAt, startMediaServer, type MediaServer } from '../support/http-media-server.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { scratchFolder } from '../support/scratch-folder.ts';
import { generateTestPki, type TestPki } from '../support/tls.ts';
import { waitFor } from '../support/wait.ts';

let server: MediaServer;
beforeAll(async () => {
  server = await startMediaServer();
});
afterAll(() => server?.close());

const scratch = scratchFolder('ve-media-');
const running: FileMediaLibrary[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((library) => library.stop()));
});

let served = 0;
/** `size` random bytes, at a path of their own on `on`, and the need that names them. */
function media(size: number, on: MediaServer = server): { body: Buffer; path: string; need: MediaNeed } {
  const body = randomBytes(size);
  const path = `/county/media/${++served}.mp3`;
  const url = on.url(path);
  const sha256 = createHash('sha256').update(body).digest('hex');
  return { body, path, need: { sha256, url, size, file: mediaLibraryFile({ sha256, url }) } };
}

/** A library on a folder of its own (or `root`), with short timeouts, and a wait for its state that listens to onChange. */
function library(options: Partial<FileMediaLibraryOptions> = {}) {
  const { logger, lines } = memoryLogger();
  const listeners = new Set<() => void>();
  const root = options.root ?? scratch.fresh('library');
  const library = new FileMediaLibrary({
    root,
    logger,
    timeouts: { stallMs: 300, totalMs: 20_000 },
    retry: { initialMs: 60_000, maxMs: 60_000 },
    onChange: () => {
      for (const listener of listeners) listener();
    },
    ...options,
  });
  running.push(library);
  const until = (what: string, test: (state: MediaLibraryState) => boolean): Promise<MediaLibraryState> =>
    new Promise((resolve, reject) => {
      const look = (): void => {
        const state = library.state();
        if (!test(state)) return;
        listeners.delete(look);
        clearTimeout(deadline);
        resolve(state);
      };
      const deadline = setTimeout(() => {
        listeners.delete(look);
        reject(new Error(`timed out waiting for ${what}; state: ${JSON.stringify(library.state())}`));
      }, 15_000);
      listeners.add(look);
      look();
    });
  return { library, lines, until, root };
}

const reasonOf = (check: MediaCheck): string => (check.ok ? 'ok' : check.reason);
const programmes = (root: string): string[] => (existsSync(join(root, 'programmes')) ? readdirSync(join(root, 'programmes')).sort() : []);
const nameOf = (file: string): string => file.slice('programmes/'.length);
const escaped = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const retryNote = String.raw` \(attempt 1, next in \d+(\.\d)? s\)$`;

describe('media library over HTTP', () => {
  it('fetches a wanted file, checked; after a restart checks it again without fetching; one that vanishes is fetched again', async () => {
    const { body, path, need } = media(4096);
    server.route(path, serveFile(body));
    const first = library();
    first.library.want([need]);
    first.library.start();
    await first.until('the file to be present', (s) => s.present === 1);
    expect(first.library.check(need)).toEqual({ ok: true });
    expect(readFileSync(join(first.root, need.file)).equals(body)).toBe(true);
    expect(programmes(first.root)).toEqual([nameOf(need.file)]);
    await first.library.stop();

    const again = library({ root: first.root });
    again.library.want([need]);
    again.library.start();
    await again.until('the file to be checked', (s) => s.present === 1);
    expect(again.library.check(need)).toEqual({ ok: true });
    expect(server.requestsFor(path)).toHaveLength(1);

    unlinkSync(join(first.root, need.file));
    expect(again.library.check(need)).toEqual({ ok: false, reason: `${need.file} is gone from the library (fetching it again)` });
    await again.until('the file to be fetched again', (s) => s.present === 1);
    expect(again.library.check(need)).toEqual({ ok: true });
    expect(server.requestsFor(path)).toHaveLength(2);
  });

  it('resumes a download cut mid-file with Range: bytes=N- and checks the whole file', async () => {
    const { body, path, need } = media(256 * 1024);
    const at = 100 * 1024;
    const { library: lib, root, until, lines } = library({ retry: { initialMs: 10, maxMs: 10 } });
    // The cut comes once the village has written every byte sent before it, so N is known exactly.
    const part = join(root, partName(need.file));
    server.route(
      path,
      cutOnceAt(body, at, () => waitFor('the first bytes in the part file', () => existsSync(part) && statSync(part).size === at)),
    );
    lib.want([need]);
    lib.start();
    await until('the file to be present', (s) => s.present === 1);
    expect(lines.find((l) => l.msg === 'media fetch failed')?.['reason']).toMatch(/^connection lost after 102400 of 262144 bytes from /);
    expect(server.requestsFor(path).map((r) => r.range)).toEqual([undefined, `bytes=${at}-`]);
    expect(readFileSync(join(root, need.file)).equals(body)).toBe(true);
    expect(lib.check(need)).toEqual({ ok: true });
    expect(programmes(root)).toEqual([nameOf(need.file)]);
  });

  it('starts over from byte 0 when the server ignores the resume (200), refuses it (416), or the part is longer than the file', async () => {
    const ignored = media(3000);
    const refused = media(3000);
    const overlong = media(3000);
    server.route(ignored.path, serveFile(ignored.body, 'ignore'));
    server.route(refused.path, serveFile(refused.body, 'refuse'));
    server.route(overlong.path, serveFile(overlong.body));
    const root = scratch.fresh('library');
    mkdirSync(join(root, 'programmes'), { recursive: true });
    // Left by earlier attempts, and not part of these files at all: only a fetch from byte 0 can make them right.
    writeFileSync(join(root, partName(ignored.need.file)), randomBytes(1000));
    writeFileSync(join(root, partName(refused.need.file)), randomBytes(1000));
    writeFileSync(join(root, partName(overlong.need.file)), randomBytes(4000));
    const { library: lib, until } = library({ root, concurrency: 3 });
    lib.want([ignored.need, refused.need, overlong.need]);
    lib.start();
    await until('all three to be present', (s) => s.present === 3);
    expect(server.requestsFor(ignored.path).map((r) => r.range)).toEqual(['bytes=1000-']);
    expect(server.requestsFor(refused.path).map((r) => r.range)).toEqual(['bytes=1000-', undefined]);
    expect(server.requestsFor(overlong.path).map((r) => r.range)).toEqual([undefined]);
    for (const { need, body } of [ignored, refused, overlong]) expect(readFileSync(join(root, need.file)).equals(body)).toBe(true);
    expect(programmes(root)).toEqual([ignored, refused, overlong].map((m) => nameOf(m.need.file)).sort());
  });

  it('refuses a file whose sha256 is not the one asked for: nothing enters the library, no part file is left', async () => {
    const { path, need } = media(2048);
    server.route(path, serveFile(randomBytes(2048)));
    const { library: lib, until, root } = library();
    lib.want([need]);
    lib.start();
    await until('the fetch to fail', (s) => s.failed === 1);
    const mismatch = `sha256 mismatch: expected ${need.sha256}, got [0-9a-f]{64} \\(from ${escaped(need.url)}\\)`;
    expect(reasonOf(lib.check(need))).toMatch(new RegExp(`^fetch failed: ${mismatch}${retryNote}`));
    expect(programmes(root)).toEqual([]);
  });

  it('says HTTP 404 and the URL for a file the server does not have', async () => {
    const { need } = media(100);
    const { library: lib, until, root } = library();
    lib.want([need]);
    lib.start();
    await until('the fetch to fail', (s) => s.failed === 1);
    expect(reasonOf(lib.check(need))).toMatch(new RegExp(`^fetch failed: HTTP 404 Not Found from ${escaped(need.url)}${retryNote}`));
    expect(programmes(root)).toEqual([]);
  });

  it('gives up on a server that stops sending after the stall timeout, keeping the part for a resume', async () => {
    const { body, path, need } = media(10_000);
    server.route(path, stallAt(body, 4000));
    const { library: lib, until, root } = library();
    lib.want([need]);
    lib.start();
    await waitFor('the download to show its progress', () => reasonOf(lib.check(need)) === 'not fetched yet (downloading, 40 % of 10 kB)');
    await until('the fetch to fail', (s) => s.failed === 1);
    expect(reasonOf(lib.check(need))).toMatch(new RegExp(`^fetch failed: no data for 0.3 s from ${escaped(need.url)}${retryNote}`));
    expect(programmes(root)).toEqual([nameOf(partName(need.file))]);
    expect(statSync(join(root, partName(need.file))).size).toBe(4000);
  });

  it('never writes more than the size asked for: a longer body fails, and a Content-Length that disagrees fails before the body', async () => {
    const longer = media(1000);
    const declared = media(1000);
    server.route(longer.path, serveChunked(Buffer.concat([longer.body, randomBytes(10)])));
    server.route(declared.path, serveFile(randomBytes(1234)));
    const { library: lib, until, root } = library();
    lib.want([longer.need, declared.need]);
    lib.start();
    await until('both fetches to fail', (s) => s.failed === 2);
    expect(reasonOf(lib.check(longer.need))).toMatch(
      new RegExp(`^fetch failed: more than 1000 bytes from ${escaped(longer.need.url)}, 1000 expected${retryNote}`),
    );
    expect(reasonOf(lib.check(declared.need))).toMatch(
      new RegExp(`^fetch failed: size 1234 bytes, 1000 expected \\(from ${escaped(declared.need.url)}\\)${retryNote}`),
    );
    expect(programmes(root)).toEqual([]);
  });

  it('abandons a download when its need leaves the list, and stop() resolves once the last one is gone', async () => {
    const dropped = media(10_000);
    const stopped = media(10_000);
    server.route(dropped.path, stallAt(dropped.body, 10));
    server.route(stopped.path, stallAt(stopped.body, 10));
    const { library: lib, until } = library({ timeouts: { stallMs: 60_000, totalMs: 60_000 } });
    lib.want([dropped.need, stopped.need]);
    lib.start();
    await until('both downloads to be under way', (s) => s.fetching === 2);
    await waitFor('both requests at the server', () => server.requestsFor(dropped.path).length + server.requestsFor(stopped.path).length === 2);
    lib.want([stopped.need]);
    await server.requestsFor(dropped.path)[0]!.closed;
    expect(lib.state()).toMatchObject({ wanted: 1, fetching: 1 });
    await lib.stop();
    await server.requestsFor(stopped.path)[0]!.closed;
    expect(lib.state()).toMatchObject({ fetching: 0, failed: 0 });
  });
});

describe('media library quota', () => {
  it('evicts the least recently used files no programme needs, never a wanted one nor anything outside programmes/', async () => {
    const root = scratch.fresh('library');
    mkdirSync(join(root, 'programmes'), { recursive: true });
    mkdirSync(join(root, 'chimes'));
    writeFileSync(join(root, 'chimes', 'bell.wav'), randomBytes(5000));
    const hoursAgo = (hours: number): number => (Date.now() - hours * 3_600_000) / 1000;
    const old = (file: string, hours: number, body: Buffer = randomBytes(1000)): void => {
      writeFileSync(join(root, file), body);
      utimesSync(join(root, file), hoursAgo(hours), hoursAgo(hours));
    };
    const kept = media(1000);
    old(kept.need.file, 4, kept.body);
    old('programmes/oldest.mp3', 3);
    old('programmes/older.mp3', 2);
    old('programmes/recent.mp3', 1);
    const fresh = media(1000);
    const later = media(2000);
    server.route(fresh.path, serveFile(fresh.body));
    server.route(later.path, serveFile(later.body));
    const { library: lib, until, lines } = library({ root, quotaBytes: 3500 });

    lib.want([kept.need, fresh.need]);
    lib.start();
    await until('both to be present', (s) => s.present === 2);
    expect(programmes(root)).toEqual([nameOf(kept.need.file), nameOf(fresh.need.file), 'recent.mp3'].sort());
    expect(lib.state()).toMatchObject({ usedBytes: 3000, quotaBytes: 3500, quotaFull: false });

    // The oldest file of all, but just played: it is now the most recently used.
    expect(lib.check(kept.need)).toEqual({ ok: true });
    utimesSync(join(root, fresh.need.file), hoursAgo(0.5), hoursAgo(0.5));
    lib.want([later.need]);
    await until('the later file to be present', (s) => s.present === 1 && s.wanted === 1);
    expect(programmes(root)).toEqual([nameOf(kept.need.file), nameOf(later.need.file)].sort());
    expect(lines.filter((l) => l.msg.startsWith('media file evicted')).map((l) => l['file'])).toEqual([
      'programmes/oldest.mp3',
      'programmes/older.mp3',
      'programmes/recent.mp3',
      fresh.need.file,
    ]);
    expect(existsSync(join(root, 'chimes', 'bell.wav'))).toBe(true);
  });

  it('does not fetch what cannot fit beside the files the schedule needs, says so, and fetches it once room is freed', async () => {
    const a = media(1000);
    const b = media(1000);
    const c = media(1000);
    for (const m of [a, b, c]) server.route(m.path, serveFile(m.body));
    const { library: lib, until, root } = library({ quotaBytes: 2500 });
    lib.want([a.need, b.need, c.need]);
    lib.start();
    await until('two present and one refused', (s) => s.present === 2 && s.failed === 1);
    expect(lib.state().quotaFull).toBe(true);
    expect(reasonOf(lib.check(c.need))).toMatch(
      new RegExp(`^fetch failed: library quota of 2500 bytes is full with files the schedule needs${retryNote}`),
    );
    expect(server.requestsFor(c.path)).toHaveLength(0);

    lib.want([a.need, c.need]);
    await until('the third to be present', (s) => s.present === 2 && s.wanted === 2);
    expect(programmes(root)).toEqual([nameOf(a.need.file), nameOf(c.need.file)].sort());
    expect(lib.state().quotaFull).toBe(false);
  });
});

describe('media library over HTTPS', () => {
  let pki: TestPki;
  let secure: MediaServer;
  beforeAll(async () => {
    pki = await generateTestPki();
    secure = await startMediaServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) });
  });
  afterAll(async () => {
    await secure?.close();
    pki?.cleanup();
  });

  it('fetches from a server whose certificate the configured county CA signed', async () => {
    const { body, path, need } = media(5000, secure);
    secure.route(path, serveFile(body));
    const { library: lib, until, root } = library({ ca: readFileSync(pki.ca) });
    lib.want([need]);
    lib.start();
    await until('the file to be present', (s) => s.present === 1);
    expect(readFileSync(join(root, need.file)).equals(body)).toBe(true);
  });

  it('refuses a server the configured CA did not sign, and without a CA one that no system CA signed', async () => {
    const { body, path, need } = media(5000, secure);
    secure.route(path, serveFile(body));
    for (const ca of [readFileSync(pki.rogueCa), undefined]) {
      const { library: lib, until, root } = library(ca === undefined ? {} : { ca });
      lib.want([need]);
      lib.start();
      await until('the fetch to fail', (s) => s.failed === 1);
      expect(reasonOf(lib.check(need))).toMatch(new RegExp(`^fetch failed: cannot fetch ${escaped(need.url)}: .*certificate`));
      expect(programmes(root)).toEqual([]);
    }
    expect(secure.requestsFor(path)).toHaveLength(0);
  });
});
