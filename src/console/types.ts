/**
 * The console's view of the village: what the office page may see and do, as one port. The page never
 * reaches the controller, the outbox or the drivers itself; app.ts builds this from them (console-village.ts),
 * and a test can hand the server any other implementation.
 */
import type { StatusDocument } from '../status/status-document.ts';
import type { PlaybackEventKind } from '../contract/vocabulary.ts';
import type { ProgrammeFiringView, ProgrammeOverview } from '../schedule/programme-overview.ts';
import type { ConsoleAuditAction } from '../contract/payloads.ts';

export const consoleRoles = ['official', 'installer'] as const;
export type ConsoleRole = (typeof consoleRoles)[number];

/** Who is signed in; every action the page takes is done, logged and reported in this name. */
export interface ConsoleUser {
  name: string;
  role: ConsoleRole;
  /** The client's address, for the audit trail. */
  address: string;
}

/** What a villager's press became, as the alarms page lists it. */
export interface AlarmView {
  id: string;
  terminal: string;
  terminalLabel: string;
  type: 'button' | 'tamper' | 'test';
  /** ISO time of the press. */
  raisedAt: string;
  presses: number;
  /** `sent`: stored and on its way; `received`: the county acknowledged it; `not-received`: its ack is overdue. */
  state: 'sent' | 'received' | 'not-received';
  /** ISO time of the county's acknowledgement, or null. */
  ackedAt: string | null;
}

/** An announcement made in the page: text to speak, or a WAV recorded in the browser. */
export interface AnnounceOrder {
  content: { kind: 'text'; text: string } | { kind: 'recording'; wav: Buffer };
  zones: readonly string[];
  repeat: number;
  chime: boolean;
}

export type ActionResult = { ok: true; id: string } | { ok: false; reason: string };

/** One step of a broadcast the page started (or any broadcast, for the stop button's list). */
export interface BroadcastStep {
  event: PlaybackEventKind;
  /** ISO time. */
  at: string;
  reason?: string;
}

export interface BroadcastView {
  id: string;
  /** Who made it in the page, or null for the county's and the schedule's. */
  by: string | null;
  priority: string;
  zones: readonly string[];
  steps: readonly BroadcastStep[];
  /** False once it finished, was stopped, preempted for good, refused or failed. */
  active: boolean;
}

/** The programme schedule as the programme page shows it: the schedule's own overview (which runs, what is due today and this week, the newest firings). */
export type ProgrammeView = ProgrammeFiringView;
export type ProgrammesView = ProgrammeOverview;

/** What the installer page shows per device beyond the status page: raw replies and error counts. */
export interface DeviceDiagnostics {
  id: string;
  label: string;
  role: string;
  model: string;
  online: boolean;
  /** Protocol error counts since start, by kind. */
  errors: Readonly<Record<string, number>>;
  /** The last raw reply: register values by address for Modbus, the last line for line devices; null if none yet. */
  lastRaw: { at: string; registers?: Readonly<Record<string, number>>; line?: string } | null;
}

/** Audit events that are not broadcasts: each is logged and reported to the county with the user's name. */
/** The contract's list: each action travels to the county in a `console` report. */
export type AuditAction = ConsoleAuditAction;

export interface AuditEntry {
  action: AuditAction;
  /** The account name tried or used (for a refused login, what was typed, cut short). */
  user: string;
  role?: ConsoleRole;
  address: string;
  /** The broadcast or alarm it concerns, if any. */
  subject?: string;
  detail?: string;
}

export interface ConsoleZone {
  id: string;
  label: string;
  amplifier?: string;
  /** The device whose status registers tell the amplifier's power, overheat and line fault (none for a plain amplifier). */
  statusDevice?: string | undefined;
}

export interface ConsoleVillage {
  readonly villageName: string;
  /** Loudspeaker zones, each with the amplifier that drives it and the device that reports that amplifier's state. */
  readonly zones: ReadonlyArray<ConsoleZone>;
  /** Alarm columns that can raise a test alarm. */
  readonly terminals: ReadonlyArray<{ id: string; label: string }>;
  status(): Promise<StatusDocument>;
  recentAlarms(limit: number): AlarmView[];
  /** Plays it at `announcement` priority (an emergency preempts it); a refusal (quiet hours, no such zone) says why. */
  announce(order: AnnounceOrder, user: ConsoleUser): Promise<ActionResult>;
  /** Stops a broadcast by id; false when there was nothing of that id playing or waiting. */
  stop(id: string, user: ConsoleUser): boolean;
  broadcast(id: string): BroadcastView | undefined;
  /** Broadcasts playing or waiting now, newest first. */
  activeBroadcasts(): BroadcastView[];
  programmes(): ProgrammesView;
  diagnostics(): DeviceDiagnostics[];
  /** A `test` alarm from a column, as if its button were pressed in test mode. */
  testAlarm(terminal: string, user: ConsoleUser): ActionResult;
  /** A short tone on one zone's loudspeakers, reported as a test. */
  speakerTest(zone: string, user: ConsoleUser): Promise<ActionResult>;
  audit(entry: AuditEntry): void;
}
