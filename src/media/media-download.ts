import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, dirname, join } from 'node:path';
import { errorText } from '../platform/error-text.ts';
import { syncDirectory } from '../platform/durable-file.ts';
import { sha256OfFile } from '../platform/file-hash.ts';
import type { MediaNeed } from '../schedule/types.ts';
import { secondsText } from './amounts.ts';

export interface DownloadTimeouts {
  /** One attempt, request to last byte. A cut-off attempt keeps its part file, so the next one resumes. */
  totalMs: number;
  /** No response and no byte for this long: the link or the server is stuck. */
  stallMs: number;
}

export interface MediaDownload {
  need: MediaNeed;
  /** The library folder (absolute); `need.file` is a path inside it. */
  root: string;
  timeouts: DownloadTimeouts;
  /** PEM the server's certificate must chain to (the county CA), in place of the system's; https only. */
  ca?: string | Buffer | undefined;
  /** Abandons the attempt; the part file is kept for the next one. */
  signal: AbortSignal;
  /** Bytes in the part file so far: once when the attempt knows where it starts, then per chunk written. */
  onProgress?: (bytes: number) => void;
}

/** `progressed`: the part file grew, so the next attempt starts further on (worth retrying soon). */
export type DownloadResult = { ok: true } | { ok: false; reason: string; progressed: boolean };

/** Where a file is written until it is complete and checked: hidden, next to where it will be, kept across a cut. */
export function partName(file: string): string {
  return join(dirname(file), `.${basename(file)}.part`);
}

type Attempt = DownloadResult | { restart: string };

/**
 * Fetches one need into the library: into its part file (resumed with a Range request when one is left
 * from a cut), never more than `size` bytes, fsync'd, checked against `sha256`, then renamed into place and
 * the folder fsync'd — a file under its own name is always complete and checked. Never throws.
 */
export async function downloadMedia(download: MediaDownload): Promise<DownloadResult> {
  const { need, root } = download;
  const target = join(root, need.file);
  const part = join(root, partName(need.file));
  let progressed = false;
  const grew = (bytes: number, from: number): void => {
    if (bytes > from) progressed = true;
    download.onProgress?.(bytes);
  };
  try {
    await mkdir(dirname(target), { recursive: true });
    let attempt = await fetchInto(download, part, await usablePartBytes(part, need.size), grew);
    // Once only: a server that refuses the resume a second time from byte 0 is not going to help.
    if ('restart' in attempt) {
      await unlink(part).catch(() => undefined);
      attempt = await fetchInto(download, part, 0, grew);
    }
    if ('restart' in attempt) return { ok: false, reason: attempt.restart, progressed };
    if (!attempt.ok) return { ...attempt, progressed: attempt.progressed || progressed };
    const actual = await sha256OfFile(part, download.signal);
    if (actual !== need.sha256) {
      await unlink(part);
      return { ok: false, reason: `sha256 mismatch: expected ${need.sha256}, got ${actual} (from ${need.url})`, progressed: false };
    }
    await rename(part, target);
    syncDirectory(dirname(target));
    return { ok: true };
  } catch (error) {
    if (download.signal.aborted) return { ok: false, reason: 'stopped', progressed };
    return { ok: false, reason: `cannot write ${partName(need.file)}: ${errorText(error)}`, progressed };
  }
}

/** How much of a part file a resume may build on; one longer than the file it is part of is discarded. */
async function usablePartBytes(part: string, size: number): Promise<number> {
  let bytes: number;
  try {
    bytes = (await stat(part)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  if (bytes <= size) return bytes;
  await unlink(part);
  return 0;
}

async function fetchInto(download: MediaDownload, part: string, offset: number, grew: (bytes: number, from: number) => void): Promise<Attempt> {
  const { need, timeouts, signal } = download;
  grew(offset, offset);
  // Complete but unchecked (the last attempt ended between the last byte and the check): check it.
  if (offset === need.size) return { ok: true };
  let url: URL;
  try {
    url = new URL(need.url);
  } catch {
    return { ok: false, reason: `not a URL: ${need.url}`, progressed: false };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: `not an http or https URL: ${need.url}`, progressed: false };

  const cut = new AbortController();
  let cutReason: string | undefined;
  const cutOff = (reason: string): void => {
    cutReason ??= reason;
    cut.abort();
  };
  const onStop = (): void => cutOff('stopped');
  signal.addEventListener('abort', onStop, { once: true });
  if (signal.aborted) onStop();
  const overall = setTimeout(() => cutOff(`not complete after ${secondsText(timeouts.totalMs)} (from ${need.url})`), timeouts.totalMs);
  let stall: NodeJS.Timeout | undefined;
  const fed = (): void => {
    clearTimeout(stall);
    stall = setTimeout(() => cutOff(`no data for ${secondsText(timeouts.stallMs)} from ${need.url}`), timeouts.stallMs);
  };
  fed();
  let written = offset;
  let answered = false;
  try {
    const response = await get(url, offset, download.ca, cut.signal);
    answered = true;
    fed();
    const start = startOf(response, offset, need);
    if (typeof start !== 'number') {
      response.destroy();
      return start;
    }
    written = start;
    grew(written, offset);
    const file = await open(part, start === 0 ? 'w' : 'a');
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        fed();
        if (written + chunk.length > need.size) {
          response.destroy();
          await file.close();
          await unlink(part);
          return { ok: false, reason: `more than ${need.size} bytes from ${need.url}, ${need.size} expected`, progressed: false };
        }
        await file.write(chunk);
        written += chunk.length;
        grew(written, offset);
      }
      await file.sync();
    } finally {
      await file.close().catch(() => undefined);
    }
    if (written < need.size)
      return { ok: false, reason: `connection closed after ${written} of ${need.size} bytes from ${need.url}`, progressed: written > offset };
    return { ok: true };
  } catch (error) {
    const lost = answered ? `connection lost after ${written} of ${need.size} bytes from` : 'cannot fetch';
    const reason = cutReason ?? `${lost} ${need.url}: ${errorText(error)}`;
    return { ok: false, reason, progressed: written > offset };
  } finally {
    clearTimeout(overall);
    clearTimeout(stall);
    signal.removeEventListener('abort', onStop);
  }
}

/**
 * Where the body starts in the file, or why it cannot be used: a resume the server ignored (200) starts
 * over at 0, one it refused (416) or placed elsewhere starts over clean, a size other than the need's fails.
 */
function startOf(response: IncomingMessage, offset: number, need: MediaNeed): number | Attempt {
  const status = response.statusCode ?? 0;
  const sizeMismatch = (size: number): Attempt => ({
    ok: false,
    reason: `size ${size} bytes, ${need.size} expected (from ${need.url})`,
    progressed: false,
  });
  if (status === 200) {
    const length = Number(response.headers['content-length'] ?? Number.NaN);
    return Number.isFinite(length) && length !== need.size ? sizeMismatch(length) : 0;
  }
  if (status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers['content-range'] ?? '');
    if (range === null) return { restart: `HTTP 206 without a usable Content-Range from ${need.url}` };
    const total = range[3] === '*' ? undefined : Number(range[3]);
    if (total !== undefined && total !== need.size) return sizeMismatch(total);
    const start = Number(range[1]);
    return start === offset ? start : { restart: `${need.url} resumed at byte ${start}, not at ${offset}` };
  }
  const said = `HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''} from ${need.url}`;
  if (status === 416 && offset > 0) return { restart: said };
  return { ok: false, reason: said, progressed: false };
}

function get(url: URL, offset: number, ca: string | Buffer | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  const options: RequestOptions & { ca?: string | Buffer } = {
    signal,
    // A connection of its own: a file of megabytes gains nothing from keep-alive, and no idle socket outlives stop().
    agent: false,
    headers: { 'accept-encoding': 'identity', 'user-agent': 'village-edge', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
  };
  const request = url.protocol === 'https:' ? httpsRequest(url, { ...options, ...(ca === undefined ? {} : { ca }) }) : httpRequest(url, options);
  return new Promise((resolve, reject) => {
    request.once('response', (response) => {
      // A cut before the body is read (while the part file opens) would otherwise be an unhandled 'error' that
      // ends the process; reading the body throws it instead.
      response.on('error', () => undefined);
      resolve(response);
    });
    request.on('error', reject);
    request.end();
  });
}
