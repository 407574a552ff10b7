import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * The sha256 (lower-case hex) of a file's content, streamed, and abandoned when `signal` aborts: a long
 * programme file costs neither memory nor a late stop.
 */
export async function sha256OfFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, signal === undefined ? {} : { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
