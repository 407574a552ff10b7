import { performance } from 'node:perf_hooks';
import { SerialPort } from 'serialport';
import type { BusConfig, DeviceConfig, TimingConfig } from '../../config/schema.ts';
import type { Logger } from '../../platform/logger.ts';
import { wallClockOf } from '../../platform/time.ts';
import type { IndicatorState, InputName, LineProfile } from '../device/profile-schema.ts';
import type { Device, DeviceEvent, DeviceEventSink, DeviceHealth, ProtocolErrorKind } from '../device/types.ts';
import { ReopenBackoff } from '../device/reopen-backoff.ts';
import { LineFramer, claimedUnit, formatLine, interpretFrame, parseFrame, preview, type FramerOutput } from './line-protocol.ts';
import { IndicatorWaiters } from '../device/indicator-waiters.ts';
import { contained } from '../../platform/contained.ts';

export type LineBusConfig = Extract<BusConfig, { kind: 'line' }>;
type ErrorCounts = Partial<Record<ProtocolErrorKind, number>>;

export interface LineBusOptions {
  bus: LineBusConfig;
  devices: Array<{ config: DeviceConfig; profile: LineProfile }>;
  timing: TimingConfig;
  sink: DeviceEventSink;
  logger: Logger;
  now?: () => number;
}

export interface LineBus {
  /** Opens the port and starts listening for every device. */
  start(): void;
  /** Closes the port and clears every timer; pending writes reject. */
  stop(): Promise<void>;
  readonly devices: Device[];
}

/** Everything the bus knows about one column; only the bus changes it. */
interface ColumnState {
  readonly config: DeviceConfig;
  readonly profile: LineProfile;
  active: boolean;
  /** `unknown` until the first valid line: not yet heard, and not yet overdue. */
  presence: 'unknown' | 'online' | 'offline';
  offlineSince: number;
  /** performance.now() of the last valid line from it; null until the first. */
  heardAt: number | null;
  /** The last valid line from it (heard at `heardAt`), for the installer; null until the first. */
  lastLine: string | null;
  silenceTimer: NodeJS.Timeout | undefined;
  /** The silence timer's callback, contained, made at the first arming. */
  onSilence?: () => void;
  /**
   * The column repeats its press line until reset, and repeats are not new presses. `reset`: the reset is
   * written, and one repeat may already be on the wire (the column sent it before it read the reset); that
   * one is dropped, and the release ends it. A second press line after a reset is heard: a new press, or a
   * reset the column never got, which the domain then resets again.
   */
  button: 'free' | 'latched' | 'reset';
  readonly errors: ErrorCounts;
  readonly indicator: IndicatorSync;
}

/**
 * The indicator as a desired state: its line is written when the port is open and the column not known to
 * be silent, again after the port was lost or the column went silent (it may have lost power), and not
 * when the column already shows it. A line has no reply: written (drained) is as confirmed as it gets.
 */
interface IndicatorSync {
  desired: IndicatorState | null;
  /** What was last written to the column; null when unknown. */
  shown: IndicatorState | null;
  writing: boolean;
  failedAt: number;
  readonly waiters: IndicatorWaiters;
}

/** A failed indicator line to a column that is still heard is tried again after this long. */
const INDICATOR_RETRY_MS = 1000;

export function createLineBus(options: LineBusOptions): LineBus {
  const units = new Set<number>();
  for (const { config } of options.devices) {
    if (config.bus !== options.bus.id) throw new Error(`device "${config.id}" is on bus "${config.bus}", not "${options.bus.id}"`);
    if (units.has(config.unitId)) throw new Error(`unit ${config.unitId} is used twice on bus "${options.bus.id}"`);
    units.add(config.unitId);
  }
  return new LineBusCore(options);
}

class LineBusCore implements LineBus {
  readonly devices: Device[];
  private readonly states: ColumnState[];
  private readonly byUnit: Map<number, ColumnState>;
  private readonly busConfig: LineBusConfig;
  private readonly timing: TimingConfig;
  private readonly sink: DeviceEventSink;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly maxLength: number;
  private readonly framer: LineFramer;
  private port: SerialPort | null = null;
  private opening: Promise<void> = Promise.resolve();
  private running = false;
  private lost: { reason: string; at: number } | null = null;
  private readonly reopen: ReopenBackoff;
  private writeChain: Promise<void> = Promise.resolve();
  private readonly pendingWrites = new Set<(error: Error) => void>();

  constructor(options: LineBusOptions) {
    this.busConfig = options.bus;
    this.timing = options.timing;
    this.sink = options.sink;
    // The hub may already have bound the bus id; binding it twice would repeat the key in every JSON line.
    const bound = options.logger.bindings()['bus'] !== undefined;
    this.log = bound ? options.logger : options.logger.child({ bus: options.bus.id });
    this.now = options.now ?? Date.now;
    this.reopen = new ReopenBackoff({
      ...options.timing.reopen,
      path: options.bus.path,
      log: this.log,
      reopen: () => {
        if (this.running && this.port === null) this.openPort();
      },
    });
    this.states = options.devices.map(({ config, profile }) => ({
      config,
      profile,
      active: false,
      presence: 'unknown',
      offlineSince: 0,
      heardAt: null,
      lastLine: null,
      silenceTimer: undefined,
      button: 'free',
      errors: {},
      indicator: { desired: null, shown: null, writing: false, failedAt: -Infinity, waiters: new IndicatorWaiters() },
    }));
    this.byUnit = new Map(this.states.map((s) => [s.config.unitId, s]));
    this.devices = this.states.map((s) => this.deviceFor(s));
    // Devices of several models may share the bus; the framer must let the longest allowed line through.
    this.maxLength = Math.max(16, ...this.states.map((s) => s.profile.line.maxLength));
    this.framer = new LineFramer(this.maxLength);
  }

  start(): void {
    for (const state of this.states) this.startDevice(state);
  }

  async stop(): Promise<void> {
    await Promise.all(this.states.map((state) => this.stopDevice(state)));
  }

  /**
   * The devices share one port, so starting any of them opens it and the last one stopped closes it;
   * everything else is the bus's.
   */
  private deviceFor(state: ColumnState): Device {
    const { id, bus: busId } = state.config;
    return {
      id,
      busId,
      start: () => this.startDevice(state),
      stop: () => this.stopDevice(state),
      setIndicator: (indicator) => this.setIndicator(state, indicator),
      resetLatch: (input) => this.resetLatch(state, input),
      setRelay: (channel, on) =>
        Promise.reject(
          new Error(
            `device "${id}" (${state.profile.model}) is a line-protocol column and has no relays (asked channel ${channel} ${on ? 'on' : 'off'})`,
          ),
        ),
      health: () => this.deviceHealth(state),
    };
  }

  private deviceHealth(state: ColumnState): DeviceHealth {
    return {
      id: state.config.id,
      bus: state.config.bus,
      model: state.profile.model,
      online: state.presence === 'online',
      latching: state.profile.line.latchReset !== undefined,
      pollIntervalMs: null,
      worstPollGapMs: null,
      lastReplyAt: state.heardAt === null ? null : wallClockOf(state.heardAt, this.now),
      errors: { ...state.errors },
      lastRaw: state.heardAt === null || state.lastLine === null ? null : { at: wallClockOf(state.heardAt, this.now), line: state.lastLine },
    };
  }

  private startDevice(state: ColumnState): void {
    if (state.active) return;
    state.active = true;
    state.presence = 'unknown';
    this.armSilence(state);
    if (!this.running) {
      this.running = true;
      this.openPort();
    }
  }

  private async stopDevice(state: ColumnState): Promise<void> {
    if (!state.active) return;
    state.active = false;
    clearTimeout(state.silenceTimer);
    state.silenceTimer = undefined;
    state.button = 'free';
    state.indicator.shown = null;
    state.indicator.waiters.settle(new Error(`device "${state.config.id}" stopped before its indicator was shown`));
    if (this.running && !this.states.some((s) => s.active)) await this.closeBus();
  }

  private setIndicator(state: ColumnState, indicator: IndicatorState): Promise<void> {
    if (state.profile.line.indicator?.[indicator] === undefined) {
      // A column that cannot show a state is still a working column; the domain need not care.
      this.log.debug({ device: state.config.id, indicator }, 'profile has no line for this indicator state');
    }
    const sync = state.indicator;
    sync.desired = indicator;
    const shown = sync.waiters.wait();
    if (this.lost !== null) {
      // Said at once, as a write would fail; the state is kept and written when the port is back.
      sync.waiters.settle(
        new Error(
          `cannot show ${indicator} on device "${state.config.id}" now: bus "${this.busConfig.id}" is lost (${this.lost.reason}); kept to be shown when it is back`,
        ),
      );
    } else this.syncIndicator(state);
    return shown;
  }

  /** Writes the desired state's line if the column may not show it; a newer state asked for meanwhile follows. */
  private syncIndicator(state: ColumnState): void {
    const sync = state.indicator;
    if (sync.writing || !state.active || state.presence === 'offline' || !(this.port?.isOpen ?? false)) return;
    const indicator = sync.desired;
    if (indicator === null) return;
    const body = state.profile.line.indicator?.[indicator];
    if (sync.shown === indicator || body === undefined) {
      sync.shown = indicator;
      return sync.waiters.settle(null);
    }
    sync.writing = true;
    this.send(state, body).then(
      () => {
        sync.writing = false;
        sync.shown = indicator;
        this.syncIndicator(state);
      },
      (error: unknown) => {
        sync.writing = false;
        sync.shown = null;
        sync.failedAt = performance.now();
        sync.waiters.settle(
          new Error(`indicator ${indicator} on device "${state.config.id}" failed, kept to be shown when it is heard again: ${errorMessage(error)}`),
        );
      },
    );
  }

  private async resetLatch(state: ColumnState, input: InputName): Promise<void> {
    const body = state.profile.line.latchReset;
    if (body === undefined || input !== 'button') return;
    await this.send(state, body);
    // The release may have come before the write was seen to finish: then the latch is over already.
    if (state.button === 'latched') state.button = 'reset';
  }

  private openPort(): void {
    const { path, baudRate, parity, dataBits, stopBits } = this.busConfig;
    let port: SerialPort;
    try {
      port = new SerialPort({ path, baudRate, parity, dataBits, stopBits, autoOpen: false });
    } catch (error) {
      this.portFailed(errorMessage(error));
      return;
    }
    this.port = port;
    // Contained: a fault in reading one chunk must not end the process that the next alarm needs.
    port.on(
      'data',
      contained(this.log, 'reading the serial port', (chunk: Buffer) => {
        if (this.port === port) this.onBytes(chunk);
      }),
    );
    // Without a listener an 'error' event would throw and take the process down.
    port.on('error', (error: Error) => this.log.warn({ err: error.message }, 'serial port error'));
    port.on('close', (error?: Error | null) => {
      if (this.port !== port) return;
      this.port = null;
      this.portFailed(`port closed: ${error ? errorMessage(error) : 'no reason given'}`);
    });
    this.opening = new Promise((resolve) =>
      port.open((error) => {
        resolve();
        if (this.port !== port) return;
        if (error) {
          this.port = null;
          this.portFailed(errorMessage(error));
          return;
        }
        this.onOpened();
      }),
    );
  }

  private onOpened(): void {
    this.framer.reset();
    this.reopen.opened();
    this.log.info({ path: this.busConfig.path }, 'serial port open');
    for (const state of this.states) this.syncIndicator(state);
    if (this.lost === null) return;
    const at = this.now();
    this.log.info({ lostForMs: at - this.lost.at }, 'bus restored');
    this.lost = null;
    this.emit({ type: 'bus-restored', busId: this.busConfig.id, at });
  }

  private portFailed(reason: string): void {
    this.abortWrites(new Error(`bus "${this.busConfig.id}" lost: ${reason}`));
    for (const state of this.states) {
      state.indicator.shown = null;
      state.indicator.waiters.settle(
        new Error(
          `cannot show the indicator of device "${state.config.id}" now: bus "${this.busConfig.id}" lost (${reason}); kept to be shown when it is back`,
        ),
      );
    }
    if (this.lost === null) {
      const at = this.now();
      this.lost = { reason, at };
      this.log.error({ reason }, 'bus lost');
      this.emit({ type: 'bus-lost', busId: this.busConfig.id, at, reason });
    }
    if (this.running) this.reopen.failed(reason);
  }

  private async closeBus(): Promise<void> {
    this.running = false;
    this.reopen.cancel();
    this.abortWrites(new Error(`bus "${this.busConfig.id}" stopped`));
    this.lost = null;
    const port = this.port;
    this.port = null;
    if (port === null) return;
    await this.opening;
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    this.log.info('serial port closed');
  }

  private onBytes(chunk: Buffer): void {
    for (const piece of this.framer.push(chunk)) this.onPiece(piece);
  }

  private onPiece(piece: FramerOutput): void {
    switch (piece.kind) {
      case 'line':
      case 'cut':
      case 'stale':
        return this.onLine(piece.text, piece.kind);
      case 'overlong': {
        const state = this.stateForClaim(claimedUnit(piece.head));
        const detail =
          `line longer than ${this.maxLength} bytes (no delimiter after ${piece.length}): ${preview(piece.head)}; ` +
          'dropped up to the next "$" or delimiter';
        return this.protocolError(state, 'overlong', detail);
      }
    }
  }

  /**
   * A fragment cut by the next `$`, or left over from before the port opened, may still be a whole line
   * that only lost its delimiter: its checksum says so, and then it is heard like any other.
   */
  private onLine(text: string, origin: 'line' | 'cut' | 'stale'): void {
    const frame = parseFrame(text, this.maxLength);
    if (!frame.ok) {
      if (origin === 'stale') {
        this.log.debug({ text: preview(text) }, 'dropped bytes left over from before the port opened');
        return;
      }
      const detail = origin === 'cut' ? `cut short by the next "$": ${frame.reason}` : frame.reason;
      return this.protocolError(this.stateForClaim(frame.unit), frame.kind, detail);
    }
    const state = this.byUnit.get(frame.unit);
    if (state === undefined) {
      return this.protocolError(undefined, 'wrong-unit', `unit ${frame.unit} is not configured on this bus: ${preview(text)}`);
    }
    if (!state.active) return;
    const maxLength = state.profile.line.maxLength;
    if (text.length > maxLength) return this.protocolError(state, 'overlong', `line of ${text.length} bytes is longer than ${maxLength}`);
    const parsed = interpretFrame(frame, state.profile);
    if (!parsed.ok) return this.protocolError(state, parsed.kind, parsed.reason);

    this.log.trace({ device: state.config.id, verb: parsed.verb }, 'line');
    state.lastLine = text.trimEnd();
    this.sawLife(state);
    const event = parsed.event;
    switch (event.kind) {
      case 'heartbeat':
        return;
      case 'input':
        return this.onInput(state, event.input, event.active);
    }
  }

  private onInput(state: ColumnState, input: InputName, active: boolean): void {
    if (input === 'button' && state.profile.line.latchReset !== undefined) {
      if (active && state.button !== 'free') {
        if (state.button === 'reset') {
          state.button = 'free';
          this.log.debug({ device: state.config.id }, 'press line sent before the column read its reset: not a new press');
        }
        return;
      }
      state.button = active ? 'latched' : 'free';
    }
    const at = this.now();
    this.log.info({ device: state.config.id, input, active }, 'input');
    this.emit({ type: 'input', deviceId: state.config.id, input, active, at });
  }

  private stateForClaim(unit: number | undefined): ColumnState | undefined {
    const state = unit === undefined ? undefined : this.byUnit.get(unit);
    return state?.active ? state : undefined;
  }

  private protocolError(state: ColumnState | undefined, kind: ProtocolErrorKind, detail: string): void {
    // One that cannot be put on a device (unreadable or unknown unit) is told and logged, not counted.
    if (state !== undefined) this.count(state.errors, kind);
    this.log.warn({ device: state?.config.id, kind, reason: detail }, 'protocol error');
    const base = { type: 'protocol-error' as const, busId: this.busConfig.id, kind, detail, at: this.now() };
    this.emit(state === undefined ? base : { ...base, deviceId: state.config.id });
  }

  private sawLife(state: ColumnState): void {
    state.heardAt = performance.now();
    const wasOffline = state.presence === 'offline';
    state.presence = 'online';
    this.armSilence(state);
    if (!wasOffline) {
      const sync = state.indicator;
      if (sync.desired !== sync.shown && performance.now() - sync.failedAt >= INDICATOR_RETRY_MS) this.syncIndicator(state);
      return;
    }
    const at = this.now();
    const offlineForMs = at - state.offlineSince;
    this.log.info({ device: state.config.id, offlineForMs }, 'device recovered');
    // Shown before the domain hears of the recovery: its own "show it again" is then a state already shown.
    this.syncIndicator(state);
    this.emit({ type: 'recovered', deviceId: state.config.id, at, offlineForMs });
  }

  private armSilence(state: ColumnState): void {
    clearTimeout(state.silenceTimer);
    state.silenceTimer = setTimeout(this.silenceOf(state), state.profile.line.silenceTimeoutMs);
  }

  /** One contained callback per column, made once: the timer is re-armed with every line heard. */
  private silenceOf(state: ColumnState): () => void {
    state.onSilence ??= contained(this.log, `the silence timer of device "${state.config.id}"`, () => this.onSilence(state));
    return state.onSilence;
  }

  private onSilence(state: ColumnState): void {
    state.silenceTimer = undefined;
    if (!state.active || state.presence === 'offline') return;
    const ms = state.profile.line.silenceTimeoutMs;
    let reason = state.presence === 'unknown' ? `no valid line for ${ms} ms since start` : `no valid line for ${ms} ms`;
    if (this.lost !== null) reason += `; bus "${this.busConfig.id}" is lost (${this.lost.reason})`;
    state.presence = 'offline';
    state.offlineSince = this.now();
    // It may have lost power, and what it showed with it.
    state.indicator.shown = null;
    // A column that went silent may have restarted and forgotten its latch; its next press must be heard.
    state.button = 'free';
    this.log.warn({ device: state.config.id, reason }, 'device offline');
    this.emit({ type: 'offline', deviceId: state.config.id, at: state.offlineSince, reason });
  }

  /**
   * One write at a time per port (the stream would only queue them), so each write's timeout measures
   * its own line and not the queue ahead of it.
   */
  private send(state: ColumnState, body: string): Promise<void> {
    if (!state.active) return Promise.reject(new Error(`device "${state.config.id}" is not started`));
    const { talker, delimiter } = state.profile.line;
    const text = formatLine(talker, state.config.unitId, body) + delimiter;
    const job = (): Promise<void> => this.writeNow(state, text);
    const result = this.writeChain.then(job, job);
    this.writeChain = result.catch(() => undefined);
    return result;
  }

  private writeNow(state: ColumnState, text: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const port = this.port;
      if (port === null || !port.isOpen) {
        const why = this.lost === null ? 'not open' : `lost (${this.lost.reason})`;
        reject(new Error(`cannot write to device "${state.config.id}": bus "${this.busConfig.id}" is ${why}`));
        return;
      }
      const bytes = Buffer.from(text, 'latin1');
      // Allow for the wire time of slow buses: 11 bits per byte covers start, parity and stop bits.
      const limitMs = this.timing.requestTimeoutMs + Math.ceil((bytes.length * 11 * 1000) / this.busConfig.baudRate);
      const settle = (error?: Error | null): void => {
        if (!this.pendingWrites.delete(abort)) return;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      const abort = (error: Error): void => settle(error);
      const timer = setTimeout(() => settle(new Error(`write to device "${state.config.id}" did not finish within ${limitMs} ms`)), limitMs);
      this.pendingWrites.add(abort);
      port.write(bytes, (error) => {
        if (error) settle(error);
      });
      port.drain((error) => settle(error));
      this.log.debug({ device: state.config.id, line: text.trimEnd() }, 'wrote line');
    });
  }

  private abortWrites(error: Error): void {
    for (const abort of [...this.pendingWrites]) abort(error);
  }

  private count(counts: ErrorCounts, kind: ProtocolErrorKind): void {
    counts[kind] = (counts[kind] ?? 0) + 1;
  }

  /** A failing listener must not stop the bus from hearing the next alarm. */
  private emit(event: DeviceEvent): void {
    try {
      this.sink(event);
    } catch (error) {
      this.log.error({ err: errorMessage(error), event: event.type }, 'device event listener failed');
    }
  }
}

/** serialport prefixes its messages with "Error: ", which reads oddly inside our own reasons. */
function errorMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/^Error: /, '');
}
