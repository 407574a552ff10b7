import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountWith, hashPassword, writeAccounts } from '../../src/console/auth/accounts.ts';
import { ConsoleServer } from '../../src/console/http/console-server.ts';
import { ConsolePagesClient } from './console-pages-client.ts';
import type { ActionResult, AnnounceOrder, BroadcastView, ConsoleUser, ConsoleVillage } from '../../src/console/types.ts';
import { consoleConfigSchema } from '../../src/config/schema.ts';
import type { PlaybackEventKind } from '../../src/contract/vocabulary.ts';
import { memoryLogger } from './log-sink.ts';

const endEvents = new Set<PlaybackEventKind>(['finished', 'stopped', 'failed', 'rejected', 'preempted']);

/**
 * A ConsoleVillage that keeps what it is asked: every announcement (with the WAV Buffer it was given) and
 * every stop, by whom. Broadcasts move only when the test says (`step`), so a test sees each state it waits for.
 */
export class RecordingVillage implements ConsoleVillage {
  readonly villageName = '测试村';
  readonly zones = [
    { id: 'north', label: '北片' },
    { id: 'south', label: '南片' },
  ];
  readonly terminals = [];
  readonly announced: Array<{ order: AnnounceOrder; user: ConsoleUser; id: string }> = [];
  readonly stops: Array<{ id: string; user: ConsoleUser }> = [];
  readonly audits: unknown[] = [];
  /** When set, the next announcements are refused with this reason (quiet hours, say). */
  refusal: string | undefined;
  private readonly broadcasts = new Map<string, BroadcastView>();
  private next = 0;

  async announce(order: AnnounceOrder, user: ConsoleUser): Promise<ActionResult> {
    if (this.refusal !== undefined) return { ok: false, reason: this.refusal };
    const id = `console:test-${++this.next}`;
    this.announced.push({ order, user, id });
    this.broadcasts.set(id, { id, by: user.name, priority: 'announcement', zones: order.zones, steps: [], active: true });
    this.step(id, 'accepted');
    return { ok: true, id };
  }

  /** Adds a playback event to a broadcast, as the controller would. */
  step(id: string, event: PlaybackEventKind, reason?: string): void {
    const b = this.broadcasts.get(id);
    if (b === undefined) throw new Error(`no broadcast ${id}`);
    const steps = [...b.steps, { event, at: new Date().toISOString(), ...(reason === undefined ? {} : { reason }) }];
    this.broadcasts.set(id, { ...b, steps, active: !endEvents.has(event) });
  }

  /** A broadcast the page did not start (the county's), for the stop list. */
  add(view: BroadcastView): void {
    this.broadcasts.set(view.id, view);
  }

  stop(id: string, user: ConsoleUser): boolean {
    this.stops.push({ id, user });
    const b = this.broadcasts.get(id);
    if (b === undefined || !b.active) return false;
    this.step(id, 'stopped', `stopped in the office console by ${user.name}`);
    return true;
  }

  broadcast(id: string): BroadcastView | undefined {
    return this.broadcasts.get(id);
  }

  activeBroadcasts(): BroadcastView[] {
    return [...this.broadcasts.values()].filter((b) => b.active).reverse();
  }

  status(): never {
    throw new Error('not used by the announce page');
  }
  recentAlarms(): [] {
    return [];
  }
  programmes(): never {
    throw new Error('not used by the announce page');
  }
  diagnostics(): [] {
    return [];
  }
  testAlarm(): ActionResult {
    return { ok: false, reason: 'not used' };
  }
  async speakerTest(): Promise<ActionResult> {
    return { ok: false, reason: 'not used' };
  }
  audit(entry: unknown): void {
    this.audits.push(entry);
  }
}

export const official = { name: 'wang', password: 'correct horse battery' } as const;

/** A ConsoleServer on a free loopback port over a RecordingVillage, with one official account. */
export async function startAnnounceServer(options: { maxRecordingSeconds?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'console-announce-'));
  const usersFile = join(dir, 'users.json');
  writeAccounts(usersFile, { format: 1, users: [accountWith(official.name, 'official', await hashPassword(official.password))] });
  const config = consoleConfigSchema.parse({ enabled: true, host: '127.0.0.1', usersFile, maxRecordingSeconds: options.maxRecordingSeconds ?? 120 });
  config.port = 0;
  const village = new RecordingVillage();
  const { logger, lines } = memoryLogger('info');
  const server = new ConsoleServer({ config, village, logger, assetsDir: new URL('../../src/console/assets/', import.meta.url).pathname });
  await server.start();
  return {
    url: server.url!,
    village,
    logLines: lines,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A signed-in client of the announce page: the pages' client, with the page's CSRF token and its API. */
export class ConsoleClient extends ConsolePagesClient {
  csrf = '';

  override async signIn(name: string = official.name, password: string = official.password): Promise<void> {
    await super.signIn(name, password);
    this.csrf = (await this.page('/announce')).token;
    if (this.csrf === '') throw new Error('the announce page has no csrf-token meta');
  }

  /** POST /api/announce as the page's script sends it. */
  announce(fields: Record<string, string | string[]>, recording?: Buffer, options: { csrf?: boolean } = {}): Promise<Response> {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) form.append(name, v);
    if (recording !== undefined) form.append('recording', new Blob([recording], { type: 'audio/wav' }), 'recording.wav');
    return this.fetch('/api/announce', { method: 'POST', body: form, headers: options.csrf === false ? {} : { 'x-csrf-token': this.csrf } });
  }
}

/** A 16-bit PCM WAV of a sine, for the server's check and the fake microphone. */
export function sineWav(options: { seconds: number; rate?: number; channels?: number; hz?: number; amplitude?: number }): Buffer {
  const { seconds, rate = 16000, channels = 1, hz = 440, amplitude = 0.5 } = options;
  const frames = Math.round(seconds * rate);
  const data = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(Math.sin((2 * Math.PI * hz * i) / rate) * amplitude * 32767);
    for (let c = 0; c < channels; c++) data.writeInt16LE(v, (i * channels + c) * 2);
  }
  return Buffer.concat([wavHeader({ rate, channels, bits: 16, format: 1, dataBytes: data.length }), data]);
}

export function wavHeader(h: { rate: number; channels: number; bits: number; format: number; dataBytes: number }): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + h.dataBytes, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(h.format, 20);
  header.writeUInt16LE(h.channels, 22);
  header.writeUInt32LE(h.rate, 24);
  header.writeUInt32LE((h.rate * h.channels * h.bits) / 8, 28);
  header.writeUInt16LE((h.channels * h.bits) / 8, 32);
  header.writeUInt16LE(h.bits, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(h.dataBytes, 40);
  return header;
}
