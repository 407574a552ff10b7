/**
 * The broadcast controller: which request plays, when, where and how loud. Pure domain logic: it gets a
 * `DevicePort`, a `Player`, a logger, a clock and an event sink, and imports no hardware or network code.
 *
 * Contract, as reported through `onEvent` (every event carries the request's `status`, so an exercise is
 * `exercise` from `accepted` to its end, and lists `faultyZones` known at that moment):
 * - `rejected` (instead of `accepted`): not running, a duplicate id, no configured zone, `repeat` not a
 *   positive integer, `expiresAt` already passed, or the village's `refusal` rule (quiet hours). `reason` says which.
 * - `accepted`, then one of:
 *   - `started` when the first sound begins (chime or content), after zones are switched and amplifiers
 *     powered and warm, and only once the player says its process really started (media checked, process
 *     spawned); then `finished` | `failed` | `preempted` | `stopped`. An item whose every run fails before
 *     starting goes from `accepted` (or `queued`) straight to `failed`.
 *   - `queued` when something of equal or higher priority plays; later as above, or `stopped` with
 *     `expired while queued` once its `expiresAt` passes in the queue (one expiring while it plays plays on).
 * - Preemption: only a strictly higher priority preempts, at once. The preempted item is reported
 *   `preempted` and NOT resumed: replaying it later, out of its moment, is how stale programmes end up on
 *   air (Yunnan 2024); its origin decides — the county can re-issue, the schedule has its next slot, the
 *   alarm service can raise again.
 * - Equal priorities queue first come, first served, except that emergencies are ordered by level first
 *   (1 = most serious); a more serious emergency does not cut off a running one (see `preempts`).
 * - Local stop (`setLocalStop(true)`) outranks everything: what plays and what waits is reported `stopped`
 *   with `local stop active`, amplifiers and zones go off at once (no idle tail: power off is the silence
 *   that does not depend on the player obeying), and each request submitted meanwhile is `accepted` then
 *   `stopped` the same way. Nothing is held back to play on release: what the village silenced stays silent.
 * - `test` status: `accepted`, then `tested` at once, never `started` (a dashboard must never read a test
 *   as sound on air). No relay, no amplifier, no player, no queue and no preemption; it still checks the
 *   path: unknown zones, faulty amplifiers and missing or offline relay boards come back in `reason` /
 *   `faultyZones`. It passes even during local stop (it makes no sound) and says so in `reason`.
 * - `exercise`: the drill chime (if configured) plays before — instead of the normal chime — and after the
 *   content. If the opening drill chime fails, the exercise is `failed` without its content: a drill that
 *   is not announced as one can be taken for real (Hawaii 2018). Any other chime failure is noted in
 *   `reason` and the content plays: an emergency must not depend on a chime file.
 * - A relay write that fails is logged and its zone listed in `faultyZones` with the relay named; playback
 *   goes on in the others (and even with none: a write whose reply was lost may still have switched).
 */
import type { Logger } from 'pino';
import type { BroadcastConfig } from '../config/schema.ts';
import type { DevicePort } from '../drivers/device/types.ts';
import type { Now } from '../platform/time.ts';
import { Cancellation } from './cancellation.ts';
import { EventOutlet } from './event-outlet.ts';
import { comparePlayOrder, preempts } from './priority.ts';
import { OutputWatch } from './output-watch.ts';
import { SoundPath } from './sound-path.ts';
import type { Content, PlaybackEventKind } from '../contract/vocabulary.ts';
import type { AudioOutput, AudioState, PlayRequest, PlaybackEvent, PlayOutcome, Player, PlayerRun, ZoneFault } from './types.ts';

export type BroadcastSettings = Pick<
  BroadcastConfig,
  'zones' | 'amplifiers' | 'powerOnGapMs' | 'warmUpMs' | 'idleTailMs' | 'volume' | 'chime' | 'drillChime'
>;

export interface BroadcastControllerOptions {
  config: BroadcastSettings;
  devices: DevicePort;
  player: Player;
  logger: Logger;
  /** Gets every event, in order, on a later microtask; may throw or call back into the controller. */
  onEvent: (event: PlaybackEvent) => void;
  /** The clock the timers run on (gaps and warm-ups are computed from it): `Date.now` unless a test fakes both. */
  now?: Now;
  /**
   * How long the next item waits for a stopped run to exit before it starts anyway. The player kills its
   * process after its own kill timeout (2 s by default), so a little more than that.
   */
  playerStopWaitMs?: number;
  /** Bound on one relay write; drivers have their own timeouts, this only guards against one that hangs. */
  relayTimeoutMs?: number;
  /**
   * The sound output, checked at start, before each item, after a player failure and every
   * `checkIntervalMs` while idle; `onChange` hears when it starts or stops opening. None: never checked.
   */
  output?: { port: AudioOutput; checkIntervalMs: number; onChange: (state: AudioState) => void };
  /** A village rule that refuses a request outright (quiet hours refuse announcements); the reason is reported. */
  refusal?: (request: PlayRequest) => string | undefined;
}

interface Item {
  readonly request: PlayRequest;
  readonly seq: number;
  /** The request's zones that the config knows. */
  readonly zones: readonly string[];
  /** Facts worth telling with every later event (unknown zones, a failed chime). */
  readonly notes: string[];
  relayFaults: ZoneFault[];
  expiryTimer: NodeJS.Timeout | undefined;
}

interface Active {
  readonly item: Item;
  readonly token: Cancellation;
  run: PlayerRun | undefined;
  started: boolean;
}

/** setTimeout fires at once beyond this (about 24.8 days); such expiries are checked when dequeued. */
const maxTimerMs = 2 ** 31 - 1;

export class BroadcastController {
  private readonly now: Now;
  private readonly soundPath: SoundPath;
  private readonly outputWatch: OutputWatch | undefined;
  private readonly queue: Item[] = [];
  private readonly ampFaults = new Map<string, string>();
  private readonly events: EventOutlet<PlaybackEvent>;
  private current: Active | undefined;
  private localStop = false;
  private running = false;
  private seq = 0;
  /** Runs told to stop that may still be making sound; the next item waits for them, boundedly. */
  private stopping: Promise<void> = Promise.resolve();
  private lifetime = new Cancellation();

  constructor(private readonly options: BroadcastControllerOptions) {
    this.now = options.now ?? Date.now;
    const { config, devices, logger } = options;
    this.soundPath = new SoundPath({ ...config, relayTimeoutMs: options.relayTimeoutMs ?? 2000, devices, logger, now: this.now });
    const output = options.output;
    this.outputWatch =
      output === undefined
        ? undefined
        : new OutputWatch({
            output: output.port,
            intervalMs: output.checkIntervalMs,
            busy: () => this.current !== undefined,
            onChange: output.onChange,
            logger,
            now: this.now,
          });
    this.events = new EventOutlet(options.onEvent, (error, event) =>
      logger.error({ err: error, requestId: event.requestId, event: event.event }, 'playback event sink threw'),
    );
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lifetime = new Cancellation();
    this.soundPath.start();
    this.outputWatch?.start();
  }

  /** Stops what plays and waits, reports each `stopped`, switches everything off and clears every timer. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopEverything('service stopping');
    await this.stopping;
    this.outputWatch?.stop();
    await this.soundPath.stop();
    this.lifetime.cancel();
  }

  /** The sound output as last checked; undefined when this controller has none to check. */
  audioState(): AudioState | undefined {
    return this.outputWatch?.current();
  }

  /**
   * Takes a request, or refuses it: the reason it was refused (also its `rejected` event), undefined when it
   * was taken. Its events, the refusal's too, reach the sink on a later microtask; a caller that must answer at
   * once (the office console) has the answer here.
   */
  submit(request: PlayRequest): string | undefined {
    const item = this.newItem(request);
    const problem = this.problemWith(item);
    if (problem !== undefined) {
      this.emit('rejected', item, problem);
      return problem;
    }
    this.take(item);
    return undefined;
  }

  private take(item: Item): void {
    const { request } = item;
    this.emit('accepted', item);
    if (request.status === 'test') return this.dryRun(item);
    if (this.localStop) return this.emit('stopped', item, 'local stop active');
    const current = this.current;
    if (current === undefined) return this.begin(item);
    if (preempts(request, current.item.request)) {
      this.interrupt(current, 'preempted', `preempted by ${request.priority} ${request.id}`);
      return this.begin(item);
    }
    this.enqueue(item);
    this.emit('queued', item, `waiting for ${current.item.request.priority} ${current.item.request.id}`);
  }

  /** Ends one item (playing or queued) or all; returns how many were stopped. */
  stopPlayback(target: { requestId: string } | 'all', reason: string): number {
    const matches = (item: Item): boolean => target === 'all' || item.request.id === target.requestId;
    let count = 0;
    if (this.current !== undefined && matches(this.current.item)) {
      this.interrupt(this.current, 'stopped', reason);
      count++;
    }
    for (const item of this.queue.filter(matches)) {
      this.dequeue(item);
      this.emit('stopped', item, reason);
      count++;
    }
    if (count === 0) this.options.logger.info({ target, reason }, 'stop asked for nothing that plays or waits');
    else this.advance();
    return count;
  }

  /** The village's own stop input: while active nothing sounds, whatever its priority. */
  setLocalStop(active: boolean): void {
    if (active === this.localStop) return;
    this.localStop = active;
    if (!active) {
      this.options.logger.warn('local stop released');
      return;
    }
    this.options.logger.warn('local stop active: stopping everything and switching amplifiers off');
    this.stopEverything('local stop active');
    if (this.running) void this.soundPath.switchAllOff();
  }

  /** Device status, wired by the app: `null` when the amplifier is healthy again. */
  setAmplifierFault(amplifierId: string, fault: string | null): void {
    if ((this.ampFaults.get(amplifierId) ?? null) === fault) return;
    if (fault === null) this.ampFaults.delete(amplifierId);
    else this.ampFaults.set(amplifierId, fault);
    this.options.logger.warn({ amplifier: amplifierId, fault }, fault === null ? 'amplifier fault cleared' : 'amplifier fault');
  }

  private newItem(request: PlayRequest): Item {
    const zones = [...new Set(request.zones)];
    const known = zones.filter((z) => this.soundPath.amplifierOf(z) !== undefined);
    const unknown = zones.filter((z) => !known.includes(z));
    const notes = unknown.length === 0 ? [] : [`unknown zones: ${unknown.join(', ')}`];
    if (request.resumedFrom !== undefined) notes.unshift(`resumed after a restart (first accepted ${new Date(request.resumedFrom).toISOString()})`);
    const { chime, drillChime } = this.options.config;
    if (request.status === 'exercise' && drillChime === undefined) {
      this.options.logger.warn({ requestId: request.id }, 'exercise without a configured drill chime');
      notes.push('no drill chime configured');
    }
    if (request.chime && chime === undefined && !(request.status === 'exercise' && drillChime !== undefined)) notes.push('no chime configured');
    return { request, seq: ++this.seq, zones: known, notes, relayFaults: [], expiryTimer: undefined };
  }

  private problemWith(item: Item): string | undefined {
    const { request } = item;
    if (!this.running) return 'controller not running';
    if (request.status !== 'test' && [this.current?.item, ...this.queue].some((i) => i?.request.id === request.id)) return 'duplicate request id';
    if (item.zones.length === 0) return 'no configured zone';
    if (!Number.isInteger(request.repeat) || request.repeat < 1) return `repeat must be a positive integer, got ${request.repeat}`;
    if (this.expired(request)) return 'expired before it could start';
    return request.status === 'test' ? undefined : this.options.refusal?.(request);
  }

  private expired(request: PlayRequest): boolean {
    return request.expiresAt !== undefined && this.now() >= request.expiresAt;
  }

  private dryRun(item: Item): void {
    item.relayFaults = this.soundPath.check(item.zones);
    const audio = this.outputWatch?.current();
    if (audio?.ok === false) item.notes.push(`audio output ${audio.device}: ${audio.reason ?? 'failing'}`);
    if (this.localStop) item.notes.push('local stop active');
    this.emit('tested', item, 'test: nothing switched or played');
  }

  private enqueue(item: Item): void {
    this.queue.push(item);
    this.queue.sort((a, b) => comparePlayOrder({ ...a.request, seq: a.seq }, { ...b.request, seq: b.seq }));
    const delay = item.request.expiresAt === undefined ? undefined : item.request.expiresAt - this.now();
    if (delay !== undefined && delay <= maxTimerMs) item.expiryTimer = setTimeout(() => this.expire(item), delay);
  }

  private dequeue(item: Item): void {
    clearTimeout(item.expiryTimer);
    const index = this.queue.indexOf(item);
    if (index >= 0) this.queue.splice(index, 1);
  }

  private expire(item: Item): void {
    if (!this.queue.includes(item)) return;
    this.dequeue(item);
    this.emit('stopped', item, 'expired while queued');
  }

  private advance(): void {
    if (this.current !== undefined || !this.running) return;
    // Looked at in the queue, not taken out first: `expire` reports only what is still queued.
    let next = this.queue[0];
    while (next !== undefined && this.expired(next.request)) {
      this.expire(next);
      next = this.queue[0];
    }
    if (next === undefined) return this.soundPath.release();
    this.dequeue(next);
    this.begin(next);
  }

  private begin(item: Item): void {
    clearTimeout(item.expiryTimer);
    const active: Active = { item, token: new Cancellation(), run: undefined, started: false };
    this.current = active;
    this.play(active).catch((error: unknown) => {
      this.options.logger.error({ err: error, requestId: item.request.id }, 'broadcast item failed unexpectedly');
      this.end(active, 'failed', `internal error: ${errorText(error)}`);
    });
  }

  /** One item from switching relays to its last sound. Returns quietly once its token is cancelled. */
  private async play(active: Active): Promise<void> {
    const { item, token } = active;
    const { request } = item;
    await token.wait(this.stopping);
    if (token.cancelled) return;
    // Opened while the relays switch and the amplifiers warm up, so the check costs an emergency no time.
    const output = this.outputWatch?.check();
    item.relayFaults = await this.soundPath.prepare(item.zones, token);
    if (token.cancelled) return;
    if (output !== undefined) {
      const checked = await token.wait(output);
      if (checked.kind === 'cancelled' || token.cancelled) return;
      // A player would exit 0 into a missing card (espeak-ng does): nothing may be reported played then.
      if (checked.kind === 'settled' && !checked.value.ok)
        return this.end(active, 'failed', `audio output ${this.outputWatch?.device ?? ''}: ${checked.value.reason}`);
    }
    const { opening, closing, drill } = this.chimesFor(request);
    if (opening !== undefined) {
      const outcome = await this.runOnce(active, opening);
      if (outcome === 'cancelled') return;
      if (outcome.outcome !== 'finished') {
        if (drill) return this.end(active, 'failed', `drill chime failed, exercise not played: ${outcomeText(outcome)}`);
        item.notes.push(`chime failed: ${outcomeText(outcome)}`);
      }
    }
    for (let i = 1; i <= request.repeat; i++) {
      const outcome = await this.runOnce(active, request.content);
      if (outcome === 'cancelled') return;
      if (outcome.outcome !== 'finished') return this.end(active, 'failed', `play ${i} of ${request.repeat}: ${outcomeText(outcome)}`);
    }
    if (closing !== undefined) {
      const outcome = await this.runOnce(active, closing);
      if (outcome === 'cancelled') return;
      if (outcome.outcome !== 'finished') item.notes.push(`closing drill chime failed: ${outcomeText(outcome)}`);
    }
    this.end(active, 'finished');
  }

  /** The drill chime replaces the normal one, so an exercise always opens with the same signal. */
  private chimesFor(request: PlayRequest): { opening: Content | undefined; closing: Content | undefined; drill: boolean } {
    const { chime, drillChime } = this.options.config;
    if (request.status === 'exercise' && drillChime !== undefined) return { opening: drillChime, closing: drillChime, drill: true };
    return { opening: request.chime ? chime : undefined, closing: undefined, drill: false };
  }

  private async runOnce(active: Active, content: Content): Promise<PlayOutcome | 'cancelled'> {
    const volume = active.item.request.volume ?? this.options.config.volume[active.item.request.priority];
    let run: PlayerRun;
    try {
      run = this.options.player.start({ content, volume });
    } catch (error) {
      return { outcome: 'failed', reason: `player did not start: ${errorText(error)}` };
    }
    active.run = run;
    // `started` only once a process really plays: a media file refused or a player that cannot start is
    // `failed` (or, for a chime, a note) without the county ever being told that sound went out.
    const began = await active.token.wait(run.started);
    if (began.kind === 'cancelled' || active.token.cancelled) return 'cancelled';
    if (began.kind === 'settled' && began.value && !active.started) {
      active.started = true;
      this.emit('started', active.item);
    }
    const waited = await active.token.wait(run.done);
    if (waited.kind === 'cancelled' || active.token.cancelled) return 'cancelled';
    active.run = undefined;
    // A run that failed after it started may have met a device that just died: find out now, not at the next tick.
    if (began.kind === 'settled' && began.value && !(waited.kind === 'settled' && waited.value.outcome === 'finished'))
      void this.outputWatch?.check();
    if (waited.kind === 'settled') {
      // The controller alone stops runs; a run that says it was stopped was ended by something else.
      return waited.value.outcome === 'stopped' ? { outcome: 'failed', reason: 'player stopped without being asked' } : waited.value;
    }
    return { outcome: 'failed', reason: waited.kind === 'rejected' ? `player error: ${errorText(waited.error)}` : 'player timed out' };
  }

  /** The item ended by itself (finished, failed): report it, then start the next. */
  private end(active: Active, kind: PlaybackEventKind, reason?: string): void {
    if (this.current !== active) return;
    this.current = undefined;
    this.emit(kind, active.item, reason);
    this.advance();
  }

  /** Ends the playing item from outside; the caller starts whatever comes next. */
  private interrupt(active: Active, kind: 'preempted' | 'stopped', reason: string): void {
    active.token.cancel();
    if (this.current === active) this.current = undefined;
    const run = active.run;
    active.run = undefined;
    if (run !== undefined) this.stopRun(run, active.item.request.id);
    this.emit(kind, active.item, reason);
  }

  private stopEverything(reason: string): void {
    if (this.current !== undefined) this.interrupt(this.current, 'stopped', reason);
    for (const item of [...this.queue]) {
      this.dequeue(item);
      this.emit('stopped', item, reason);
    }
  }

  /** The next item waits for this stop, but not past `playerStopWaitMs`: a hung stop must not hang us. */
  private stopRun(run: PlayerRun, requestId: string): void {
    const waitMs = this.options.playerStopWaitMs ?? 2500;
    const stopped = this.lifetime
      .wait(
        Promise.resolve().then(() => run.stop()),
        waitMs,
      )
      .then((waited) => {
        if (waited.kind === 'timeout') this.options.logger.error({ requestId, waitMs }, 'player run did not stop in time; going on');
        if (waited.kind === 'rejected') this.options.logger.error({ requestId, err: waited.error }, 'player run failed to stop; going on');
      });
    this.stopping = Promise.all([this.stopping, stopped]).then(() => undefined);
  }

  /** Built now (time, faults as they are now), delivered on a microtask: see `EventOutlet`. */
  private emit(kind: PlaybackEventKind, item: Item, reason?: string): void {
    const { request } = item;
    const text = [reason, ...item.notes].filter((t) => t !== undefined).join('; ');
    const event: PlaybackEvent = {
      event: kind,
      requestId: request.id,
      priority: request.priority,
      ...(request.level === undefined ? {} : { level: request.level }),
      status: request.status,
      zones: request.zones,
      faultyZones: this.faultyZones(item),
      ...(text === '' ? {} : { reason: text }),
      at: this.now(),
    };
    // The emergency level under a name of its own: `level` is the log line's.
    const { level, ...logged } = event;
    const fields = { ...logged, ...(level === undefined ? {} : { emergencyLevel: level }) };
    if (kind === 'failed' || kind === 'rejected') this.options.logger.warn(fields, `broadcast ${kind}`);
    else this.options.logger.info(fields, `broadcast ${kind}`);
    this.events.push(event);
  }

  /** Faulty amplifiers as reported now, and this item's failed relay writes; one entry per zone. */
  private faultyZones(item: Item): ZoneFault[] {
    const byZone = new Map<string, ZoneFault>();
    const add = (fault: ZoneFault): void => {
      const seen = byZone.get(fault.zone);
      byZone.set(fault.zone, seen === undefined ? fault : { ...seen, fault: `${seen.fault}; ${fault.fault}` });
    };
    for (const zone of item.zones) {
      const amplifier = this.soundPath.amplifierOf(zone);
      const fault = amplifier === undefined ? undefined : this.ampFaults.get(amplifier);
      if (amplifier !== undefined && fault !== undefined) add({ zone, amplifier, fault: `amplifier ${amplifier}: ${fault}` });
    }
    item.relayFaults.forEach(add);
    return [...byZone.values()];
  }
}

function outcomeText(outcome: PlayOutcome): string {
  return outcome.outcome === 'failed' ? outcome.reason : outcome.outcome;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
