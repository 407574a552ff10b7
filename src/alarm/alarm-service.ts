import type { Logger } from 'pino';
import type { DeviceEvent, DevicePort, IndicatorState, InputName } from '../drivers/device/types.ts';
import type { Outbox, OutboxRecord } from '../store/types.ts';
import { alarmPayloadSchema, type AlarmPayload } from '../contract/payloads.ts';
import { StoredPayloadError, storedPayload } from '../contract/stored.ts';
import type { AlarmType } from '../contract/vocabulary.ts';
import { isoWithOffset, uuidv7, type Now } from '../platform/time.ts';
import type { Clock } from '../platform/trusted-clock.ts';
import { contained } from '../platform/contained.ts';

export interface Terminal {
  /** Device id of the alarm column. */
  id: string;
  label: string;
  /** Installer commissioning: the button raises `test` alarms. */
  testMode: boolean;
}

export interface AlarmServiceOptions {
  village: { id: string; name: string; location: { lat: number; lon: number; address?: string | undefined } };
  terminals: readonly Terminal[];
  devices: DevicePort;
  outbox: Outbox;
  timing: { debounceMs: number; ackTimeoutMs: number; indicatorHoldMs: number };
  logger: Logger;
  /** Called after each alarm is durably stored, so delivery can start at once. */
  onStored: (record: OutboxRecord) => void;
  /**
   * Offered each new alarm after its seq is taken and before it is committed, so that the publish and the
   * fsync run at once; returns the record with the attempt it made (or as given, when it sent nothing).
   */
  sendEarly?: (record: OutboxRecord) => OutboxRecord;
  /** Called when an alarm's ack timeout passes without an ack (local autonomy hooks in here). */
  onAckOverdue?: (alarm: AlarmPayload) => void;
  /** A stored alarm that no longer reads as one (a damaged card): a fault for the county, not only a log line. */
  onUnreadable?: (error: StoredPayloadError) => void;
  now?: Now;
  /** Whether time can be believed; alarms raised while it cannot say so, and get their time corrected later. */
  clock?: Pick<Clock, 'state' | 'monotonic'>;
}

interface TerminalState {
  terminal: Terminal;
  /** Last seen level and edge time per input, for edge detection and debounce. */
  inputs: Map<InputName, { active: boolean; lastEdgeAt: number }>;
  indicator: IndicatorState;
  ackTimer: NodeJS.Timeout | undefined;
  holdTimer: NodeJS.Timeout | undefined;
}

/**
 * Turns button and tamper edges from alarm columns into durable alarms, one per press: presses during an
 * open (not yet acknowledged) alarm of the same terminal and type are counted on it instead of flooding
 * dispatch. Drives the column's indicator: `sent` once stored, `received` on the county's ack,
 * `not-received` when the ack is overdue.
 */
export class AlarmService {
  private readonly terminals = new Map<string, TerminalState>();
  private readonly now: Now;
  /** Alarms raised while time was not trusted, with the monotonic time of the press, to correct `raisedAt` later. */
  private readonly untrustedRaises = new Map<string, number>();
  private running = false;

  constructor(private readonly options: AlarmServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.running = true;
    for (const terminal of this.options.terminals) {
      const state: TerminalState = { terminal, inputs: new Map(), indicator: 'off', ackTimer: undefined, holdTimer: undefined };
      this.terminals.set(terminal.id, state);
      this.restoreOpenAlarm(state);
    }
  }

  stop(): void {
    this.running = false;
    for (const state of this.terminals.values()) {
      clearTimeout(state.ackTimer);
      clearTimeout(state.holdTimer);
    }
    this.terminals.clear();
  }

  handleDeviceEvent(event: DeviceEvent): void {
    if (!this.running) return;
    if (event.type === 'input') this.handleInput(event.deviceId, event.input, event.active, event.at);
    else if (event.type === 'recovered') {
      // A column that lost power forgot what it showed; show it again.
      const state = this.terminals.get(event.deviceId);
      if (state !== undefined && state.indicator !== 'off') this.showIndicator(state, state.indicator);
    }
  }

  /** The county acknowledged an alarm record. */
  acknowledged(record: OutboxRecord): void {
    if (record.stream !== 'alarm') return;
    const alarm = this.readAlarm(record, 'acknowledged, but its column cannot be told');
    if (alarm === undefined) return;
    const state = this.terminals.get(alarm.terminal);
    this.options.logger.info(
      { alarmId: alarm.id, seq: alarm.seq, terminal: alarm.terminal, type: alarm.type, ackAfterMs: this.now() - record.createdAt },
      'alarm acknowledged by county',
    );
    if (state === undefined || alarm.type === 'tamper') return;
    // A console test acked while a villager's alarm waits: the lamp and the ack timer are that alarm's.
    if (alarm.type === 'test' && this.options.outbox.latestUnacked('alarm', subjectOf(alarm.terminal, 'button')) !== undefined) return;
    clearTimeout(state.ackTimer);
    state.ackTimer = undefined;
    this.showIndicator(state, 'received');
    clearTimeout(state.holdTimer);
    state.holdTimer = setTimeout(
      contained(this.options.logger, 'indicator hold timer', () => {
        state.holdTimer = undefined;
        if (state.indicator === 'received') this.showIndicator(state, 'off');
      }),
      this.options.timing.indicatorHoldMs,
    );
  }

  /**
   * A test alarm from a column, asked for in the office console: stored, sent and shown on the column exactly
   * as a press of the column in test mode (an open test alarm counts it). No latch is reset: no button was
   * pressed, and a villager's press latched but not yet read must survive it. Refused while a real alarm of
   * the column waits for the county, whose ack timer (and with it the local alarm) and lamp the test would take over.
   */
  raiseTest(terminalId: string): { ok: true; id: string } | { ok: false; reason: string } {
    const state = this.running ? this.terminals.get(terminalId) : undefined;
    if (state === undefined) return { ok: false, reason: this.running ? `no alarm column "${terminalId}"` : 'the alarm service is not running' };
    if (this.options.outbox.latestUnacked('alarm', subjectOf(terminalId, 'button')) !== undefined)
      return { ok: false, reason: `a real alarm from "${terminalId}" is waiting for the county: test once it is received` };
    const id = this.raise(state, 'test', undefined, this.now());
    this.options.logger.warn({ alarmId: id, terminal: terminalId }, 'test alarm raised from the office console');
    return { ok: true, id };
  }

  private handleInput(deviceId: string, input: InputName, active: boolean, at: number): void {
    const state = this.terminals.get(deviceId);
    if (state === undefined || (input !== 'button' && input !== 'tamper')) return;
    const previous = state.inputs.get(input);
    if (previous !== undefined && previous.active === active) return;
    const bounced = previous !== undefined && at - previous.lastEdgeAt < this.options.timing.debounceMs;
    state.inputs.set(input, { active, lastEdgeAt: at });
    if (!active) return;
    if (bounced) {
      this.options.logger.debug({ terminal: deviceId, input }, 'edge ignored: within debounce time');
      return;
    }
    const type: AlarmType = input === 'tamper' ? 'tamper' : state.terminal.testMode ? 'test' : 'button';
    this.raise(state, type, input, at);
  }

  /** Returns the id of the alarm that holds the press: a new one, the open one, or a follow-up. `input` undefined: nothing to reset. */
  private raise(state: TerminalState, type: AlarmType, input: InputName | undefined, at: number): string {
    const { outbox } = this.options;
    const terminal = state.terminal;
    const open = outbox.latestUnacked('alarm', subjectOf(terminal.id, type));
    return open !== undefined ? this.countPress(state, open, type, input, at) : this.raiseNew(state, type, input, at);
  }

  private raiseNew(state: TerminalState, type: AlarmType, input: InputName | undefined, at: number): string {
    const { logger } = this.options;
    const terminal = state.terminal;
    const { record, payload } = this.store(state, type, at, { presses: 1 });
    // Only now, with the alarm committed, may anything say it exists.
    // `durable: false`: the card takes no writes, so it lives in memory until it does (and goes out all the same).
    logger.warn(
      { alarmId: record.id, seq: record.seq, terminal: terminal.id, type, ...(record.payload['durable'] === false ? { durable: false } : {}) },
      'alarm raised and stored',
    );
    this.options.onStored(record);
    if (input !== undefined) this.resetLatch(terminal.id, input);
    if (type !== 'tamper') {
      this.showIndicator(state, 'sent');
      this.armAckTimer(state, payload, this.options.timing.ackTimeoutMs);
    }
    return record.id;
  }

  /**
   * Another press while the terminal's alarm waits for the county. Counted on the alarm while it has not
   * been published; once a copy is on its way the county may ack that copy and never read a later count,
   * so the new count travels as a follow-up alarm (`followUpOf`), which later presses count on in turn.
   */
  private countPress(state: TerminalState, open: OutboxRecord, type: AlarmType, input: InputName | undefined, at: number): string {
    const { outbox, logger } = this.options;
    const alarm = this.readAlarm(open, 'a new alarm is raised for this press instead');
    if (alarm === undefined) return this.raiseNew(state, type, input, at);
    const presses = alarm.presses + 1;
    let heldBy = alarm.id;
    if (open.attempts === 0) {
      outbox.updatePayload(open.id, { ...alarm, presses });
      logger.info({ alarmId: alarm.id, terminal: alarm.terminal, type: alarm.type, presses }, 'press counted on open alarm');
    } else {
      const { record } = this.store(state, alarm.type, at, { presses, followUpOf: alarm.followUpOf ?? alarm.id });
      logger.warn(
        { alarmId: record.id, seq: record.seq, followUpOf: alarm.followUpOf ?? alarm.id, terminal: alarm.terminal, type: alarm.type, presses },
        'press counted in a follow-up alarm',
      );
      this.options.onStored(record);
      heldBy = record.id;
    }
    if (input !== undefined) this.resetLatch(state.terminal.id, input);
    return heldBy;
  }

  /**
   * Time became trusted (or was corrected): alarms raised before, still waiting for the county, get the
   * `raisedAt` the monotonic clock says they had, and lose `clockTrusted: false`.
   */
  clockCorrected(): void {
    const { clock, outbox, logger } = this.options;
    if (clock === undefined) return;
    const now = this.now();
    const monoNow = clock.monotonic();
    for (const [id, monoAt] of this.untrustedRaises) {
      this.untrustedRaises.delete(id);
      const record = outbox.get(id);
      if (record === undefined || record.ackedAt !== null) continue;
      const stored = this.readAlarm(record, 'its time cannot be corrected');
      if (stored === undefined) continue;
      const { clockTrusted: _untrusted, ...alarm } = stored;
      const raisedAt = isoWithOffset(now - (monoNow - monoAt));
      outbox.updatePayload(id, { ...alarm, raisedAt });
      logger.warn({ alarmId: id, was: alarm.raisedAt, raisedAt }, 'alarm time corrected: the clock is trusted now');
    }
  }

  /** An alarm of the outbox, read through its schema; undefined (logged, and told to `onUnreadable`) when the row is damaged. */
  private readAlarm(record: OutboxRecord, consequence: string): AlarmPayload | undefined {
    try {
      return storedPayload(alarmPayloadSchema, record);
    } catch (error) {
      this.options.logger.error({ err: error, alarmId: record.id, seq: record.seq }, `stored alarm unreadable; ${consequence}`);
      this.options.onUnreadable?.(error instanceof StoredPayloadError ? error : new StoredPayloadError(record, [String(error)]));
      return undefined;
    }
  }

  private store(
    state: TerminalState,
    type: AlarmType,
    at: number,
    count: { presses: number; followUpOf?: string },
  ): { record: OutboxRecord; payload: AlarmPayload } {
    const { village, clock } = this.options;
    const terminal = state.terminal;
    const id = uuidv7(at);
    const untrusted = clock !== undefined && !clock.state().trusted;
    if (untrusted) this.untrustedRaises.set(id, clock.monotonic() - (this.now() - at));
    const alarmOf = (seq: number): AlarmPayload => ({
      id,
      seq,
      village: village.id,
      terminal: terminal.id,
      type,
      raisedAt: isoWithOffset(at),
      location: {
        village: village.name,
        terminal: terminal.label,
        lat: village.location.lat,
        lon: village.location.lon,
        ...(village.location.address === undefined ? {} : { address: village.location.address }),
      },
      attempt: 1,
      ...count,
      ...(untrusted ? { clockTrusted: false as const } : {}),
    });
    const prepared = this.options.outbox.prepare({ stream: 'alarm', id, subject: subjectOf(terminal.id, type), now: this.now(), build: alarmOf });
    // On its way to the county while the card flushes; only the commit makes it exist for the villager.
    const record = this.options.outbox.commit(this.options.sendEarly?.(prepared) ?? prepared);
    return { record, payload: alarmOf(record.seq) };
  }

  private restoreOpenAlarm(state: TerminalState): void {
    for (const type of ['button', 'test'] as const) {
      const open = this.options.outbox.latestUnacked('alarm', subjectOf(state.terminal.id, type));
      if (open === undefined) continue;
      const remaining = open.createdAt + this.options.timing.ackTimeoutMs - this.now();
      this.showIndicator(state, remaining > 0 ? 'sent' : 'not-received');
      const alarm = remaining > 0 ? this.readAlarm(open, 'no local alarm if the county does not ack it') : undefined;
      if (alarm !== undefined) this.armAckTimer(state, alarm, remaining);
      return;
    }
    // Nothing open: the column must not go on showing what it showed before a crash (e.g. `received`).
    this.showIndicator(state, 'off');
  }

  private armAckTimer(state: TerminalState, alarm: AlarmPayload, delayMs: number): void {
    clearTimeout(state.ackTimer);
    clearTimeout(state.holdTimer);
    // Contained: what the overdue ack sets off (the local alarm) must not take the process, and the alarm, down.
    state.ackTimer = setTimeout(
      contained(this.options.logger, 'ack timer', () => {
        state.ackTimer = undefined;
        this.options.logger.warn(
          { alarmId: alarm.id, terminal: alarm.terminal, ackTimeoutMs: this.options.timing.ackTimeoutMs },
          'no ack from county within the ack timeout',
        );
        this.showIndicator(state, 'not-received');
        this.options.onAckOverdue?.(alarm);
      }),
      delayMs,
    );
  }

  private showIndicator(state: TerminalState, indicator: IndicatorState): void {
    state.indicator = indicator;
    const device = this.options.devices.device(state.terminal.id);
    if (device === undefined) return;
    device.setIndicator(indicator).catch((error: unknown) => {
      this.options.logger.warn({ terminal: state.terminal.id, indicator, err: error }, 'could not set indicator');
    });
  }

  private resetLatch(deviceId: string, input: InputName): void {
    this.options.devices
      .device(deviceId)
      ?.resetLatch(input)
      .catch((error: unknown) => this.options.logger.warn({ terminal: deviceId, input, err: error }, 'could not reset latch'));
  }
}

function subjectOf(terminalId: string, type: AlarmType): string {
  return `${terminalId}:${type}`;
}
