import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PlaybackEvent, PlayRequest } from '../broadcast/types.ts';
import type { StatusDocument } from '../status/status-document.ts';
import { writeFileDurably } from '../platform/durable-file.ts';
import { errorText } from '../platform/error-text.ts';
import { isoWithOffset, uuidv7, type Now } from '../platform/time.ts';
import type {
  ActionResult,
  AlarmView,
  AnnounceOrder,
  AuditEntry,
  BroadcastView,
  ConsoleUser,
  ConsoleVillage,
  ConsoleZone,
  DeviceDiagnostics,
  ProgrammesView,
} from './types.ts';

/** The parts of the village the console reaches, each as the narrowest function it needs. */
export interface ConsoleVillageParts {
  villageName: string;
  zones: ReadonlyArray<ConsoleZone>;
  terminals: ReadonlyArray<{ id: string; label: string }>;
  /** The media library's folder; recordings are written under `console/` in it. */
  library: string;
  status(): Promise<StatusDocument>;
  broadcast: {
    /** The controller's: the reason it refused the request, or undefined when it took it. */
    submit(request: PlayRequest): string | undefined;
    stopPlayback(target: { requestId: string }, reason: string): number;
  };
  recentAlarms(limit: number): AlarmView[];
  programmes(): ProgrammesView;
  diagnostics(): DeviceDiagnostics[];
  testAlarm(terminal: string): ActionResult;
  speakerTest(zone: string, user: ConsoleUser): Promise<ActionResult>;
  /** Durable, acknowledged report to the county (the audit trail), besides the log line. */
  report(entry: AuditEntry): void;
  logger: Logger;
  now: Now;
}

/** How long a voice recording made in the page is kept in the media library. */
const recordingKeepMs = 7 * 86_400_000;
/** Broadcasts remembered for the page to follow: the last this many. */
const followedLimit = 50;
// A preempted broadcast is not resumed (the controller's rule), so it ends there too.
const endEvents = new Set(['finished', 'stopped', 'failed', 'rejected', 'preempted']);

/**
 * The ConsoleVillage port over the real parts. It follows every broadcast's playback events (the controller
 * tells it through `observe`), so the page can show an announcement's way to `started`, `finished` or
 * `preempted` and offer a stop for whatever plays or waits.
 */
export class ConsoleVillageAdapter implements ConsoleVillage {
  private readonly followed = new Map<
    string,
    { by: string | null; priority: string; zones: readonly string[]; steps: BroadcastView['steps'][number][] }
  >();

  constructor(private readonly parts: ConsoleVillageParts) {}

  get villageName(): string {
    return this.parts.villageName;
  }
  get zones(): ReadonlyArray<ConsoleZone> {
    return this.parts.zones;
  }
  get terminals(): ReadonlyArray<{ id: string; label: string }> {
    return this.parts.terminals;
  }

  status(): Promise<StatusDocument> {
    return this.parts.status();
  }

  recentAlarms(limit: number): AlarmView[] {
    return this.parts.recentAlarms(limit);
  }

  programmes(): ProgrammesView {
    return this.parts.programmes();
  }

  diagnostics(): DeviceDiagnostics[] {
    return this.parts.diagnostics();
  }

  /** Every playback event of the controller, for the page to follow. */
  observe(event: PlaybackEvent): void {
    let entry = this.followed.get(event.requestId);
    if (entry === undefined) {
      entry = { by: null, priority: event.priority, zones: event.zones, steps: [] };
      this.remember(event.requestId, entry);
    }
    entry.steps.push({ event: event.event, at: isoWithOffset(event.at), ...(event.reason === undefined ? {} : { reason: event.reason }) });
  }

  broadcast(id: string): BroadcastView | undefined {
    const entry = this.followed.get(id);
    return entry === undefined ? undefined : view(id, entry);
  }

  activeBroadcasts(): BroadcastView[] {
    return [...this.followed.entries()]
      .map(([id, entry]) => view(id, entry))
      .filter((b) => b.active)
      .reverse();
  }

  async announce(order: AnnounceOrder, user: ConsoleUser): Promise<ActionResult> {
    const { parts } = this;
    const at = parts.now();
    const id = `console:${uuidv7(at)}`;
    let content: PlayRequest['content'];
    if (order.content.kind === 'text') content = { kind: 'tts', text: order.content.text };
    else {
      try {
        content = this.keepRecording(id, order.content.wav);
      } catch (error) {
        parts.logger.error({ err: errorText(error), user: user.name }, 'console recording could not be stored');
        return { ok: false, reason: `the recording could not be stored: ${errorText(error)}` };
      }
    }
    this.remember(id, { by: user.name, priority: 'announcement', zones: order.zones, steps: [] });
    parts.report({
      action: 'announce',
      user: user.name,
      role: user.role,
      address: user.address,
      subject: id,
      detail: `${order.content.kind === 'text' ? `text: ${order.content.text.slice(0, 200)}` : 'voice recording'}; zones ${order.zones.join(', ')}; repeat ${order.repeat}`,
    });
    const refused = parts.broadcast.submit({
      id,
      priority: 'announcement',
      status: 'actual',
      zones: order.zones,
      content,
      chime: order.chime,
      repeat: order.repeat,
      origin: 'local',
    });
    if (refused === undefined) return { ok: true, id };
    // A recording refused (quiet hours) would otherwise stay on the card for good, one per attempt.
    if (content.kind === 'media') rmSync(join(parts.library, content.file), { force: true });
    return { ok: false, reason: refused };
  }

  stop(id: string, user: ConsoleUser): boolean {
    const stopped = this.parts.broadcast.stopPlayback({ requestId: id }, `stopped in the office console by ${user.name}`) > 0;
    this.parts.report({
      action: 'stop',
      user: user.name,
      role: user.role,
      address: user.address,
      subject: id,
      detail: stopped ? 'stopped' : 'nothing of that id played',
    });
    return stopped;
  }

  testAlarm(terminal: string, user: ConsoleUser): ActionResult {
    const result = this.parts.testAlarm(terminal);
    this.parts.report({
      action: 'test-alarm',
      user: user.name,
      role: user.role,
      address: user.address,
      subject: result.ok ? result.id : terminal,
      detail: result.ok ? `test alarm from ${terminal}` : `refused: ${result.reason}`,
    });
    return result;
  }

  async speakerTest(zone: string, user: ConsoleUser): Promise<ActionResult> {
    const result = await this.parts.speakerTest(zone, user);
    if (!result.ok) return result;
    const entry = this.followed.get(result.id);
    if (entry === undefined) this.remember(result.id, { by: user.name, priority: 'announcement', zones: [zone], steps: [] });
    else entry.by = user.name;
    return result;
  }

  audit(entry: AuditEntry): void {
    this.parts.report(entry);
  }

  /** The WAV into the media library, fsync'd, as content checked by its sha256 at play time. */
  private keepRecording(id: string, wav: Buffer): PlayRequest['content'] {
    const dir = join(this.parts.library, 'console');
    mkdirSync(dir, { recursive: true });
    const name = `${id.replace(/[^A-Za-z0-9-]/g, '-')}.wav`;
    this.pruneRecordings(dir);
    writeFileDurably(join(dir, name), wav, { mode: 0o644 });
    return { kind: 'media', file: `console/${name}`, sha256: createHash('sha256').update(wav).digest('hex') };
  }

  /**
   * Recordings older than a week go, so a village that announces by voice every day does not fill its card; a
   * week covers any replay after a restart and an official's question about what was said. Only recordings
   * (`console-*.wav`): the folder also holds the loudspeaker test's tone.
   */
  private pruneRecordings(dir: string): void {
    const cutoff = this.parts.now() - recordingKeepMs;
    for (const name of readdirSync(dir)) {
      if (!/^console-.*\.wav$/.test(name)) continue;
      const path = join(dir, name);
      try {
        if (statSync(path).mtimeMs < cutoff) rmSync(path, { force: true });
      } catch (error) {
        this.parts.logger.warn({ err: errorText(error), path }, 'old console recording could not be removed');
      }
    }
  }

  private remember(
    id: string,
    entry: { by: string | null; priority: string; zones: readonly string[]; steps: BroadcastView['steps'][number][] },
  ): void {
    this.followed.set(id, entry);
    if (this.followed.size > followedLimit) this.followed.delete(this.followed.keys().next().value!);
  }
}

function view(
  id: string,
  entry: { by: string | null; priority: string; zones: readonly string[]; steps: readonly BroadcastView['steps'][number][] },
): BroadcastView {
  const last = entry.steps.at(-1);
  return {
    id,
    by: entry.by,
    priority: entry.priority,
    zones: entry.zones,
    steps: entry.steps,
    active: last === undefined || !endEvents.has(last.event),
  };
}
