import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { extname, join } from 'node:path';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}
export type Assets = ReadonlyMap<string, Asset>;

const types: Readonly<Record<string, string>> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/**
 * Every file of the console's asset folder, read once at start: a handful of small files, served from memory,
 * so a page load never touches the SD card and nothing is ever fetched from the internet.
 */
export function loadAssets(dir: string): Assets {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = types[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return assets;
}
