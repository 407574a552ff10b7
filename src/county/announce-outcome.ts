import type { ReportPayload, StatePayload } from '../contract/payloads.ts';

/**
 * What each village made of one command, from its reports: the first answer (`accepted` / `rejected`),
 * then the result (`started`, `tested`, `failed`, …). `village-edge announce` prints these as they come
 * and its exit code says whether a dispatcher must act.
 */

export const levelNames: Record<number, string> = { 1: '特别重大', 2: '重大', 3: '较大', 4: '一般' };

type Result = 'queued' | 'started' | 'tested' | 'failed' | 'finished' | 'stopped' | 'preempted';
/** Once one of these has come, nothing more is waited for from that village. */
const settling: ReadonlySet<string> = new Set(['started', 'tested', 'failed', 'finished', 'stopped', 'preempted']);

interface VillageOutcome {
  online?: boolean;
  answer?: 'accepted' | 'rejected';
  result?: Result;
  reason?: string;
}

export interface AnnounceOutcome {
  /** 0: every village that answered accepted and started (or tested, or queued); 1: one rejected or failed; 3: one addressed gave no answer. */
  exitCode: 0 | 1 | 3;
  lines: string[];
}

export class AnnounceTracker {
  private readonly villages = new Map<string, VillageOutcome>();
  private readonly seenReports = new Set<string>();

  constructor(private readonly command: { jti: string; kid: string; audience: string }) {
    if (command.audience !== 'all') this.villages.set(command.audience, {});
  }

  private addressed(village: string): boolean {
    return this.command.audience === 'all' || this.command.audience === village;
  }

  /** Retained `state`: with --all, which villages there are and whether each can hear the command now. */
  state(payload: StatePayload): void {
    if (!this.addressed(payload.village)) return;
    this.outcome(payload.village).online = payload.online;
  }

  /** A report from a village; returns the line to print when it is about this command. */
  report(report: ReportPayload): string | undefined {
    if (!this.addressed(report.village) || this.seenReports.has(report.id) || !this.aboutThisCommand(report)) return undefined;
    this.seenReports.add(report.id);
    const outcome = this.outcome(report.village);
    const reason = report.reason === undefined ? '' : `: ${report.reason}`;
    switch (report.event) {
      case 'accepted':
        outcome.answer = 'accepted';
        return `${report.village} accepted${describe(report)}`;
      case 'rejected':
        outcome.answer = 'rejected';
        outcome.reason = report.reason;
        return `${report.village} REJECTED${report.jti === null ? ' (a command it could not verify, most likely this one)' : ''}${reason}`;
      // About the schedule, never a broadcast: a broadcast's jti cannot name either.
      case 'schedule-applied':
        return `${report.village} applied schedule version ${report.schedule?.version ?? '?'}`;
      case 'programme-summary':
        return `${report.village} programme summary of ${report.summary?.date ?? '?'}`;
      // The office console's audit of this broadcast (someone stopped it there): news, not its outcome.
      case 'console':
        return `${report.village} office console: ${report.console?.action ?? '?'} by ${report.console?.user ?? '?'}`;
      default:
        // A result implies acceptance, whichever report the broker delivered first.
        outcome.answer ??= 'accepted';
        // A later `finished` does not hide a `failed` that came before it.
        if (outcome.result !== 'failed') outcome.result = report.event;
        if (report.event === 'failed') outcome.reason = report.reason;
        return `${report.village} ${report.event === 'failed' ? 'FAILED' : report.event}${describe(report)}${reason}`;
    }
  }

  /**
   * A report names its command by jti, except a rejection of a command whose signature the village could
   * not verify: that one counts when it names this key's kid or says the signature is bad, and is a first
   * copy (a republished copy is older news).
   */
  private aboutThisCommand(report: ReportPayload): boolean {
    if (report.jti === this.command.jti) return true;
    if (report.jti !== null || report.event !== 'rejected' || report.attempt !== 1) return false;
    const reason = report.reason ?? '';
    return (reason.startsWith('unknown-kid') && reason.includes(JSON.stringify(this.command.kid))) || reason.startsWith('bad-signature');
  }

  /** Whether waiting longer can change nothing: every village that is addressed and online has settled. */
  settled(): boolean {
    const waitingFor = [...this.villages.values()].filter((v) => v.online !== false || v.answer !== undefined);
    return waitingFor.length > 0 && waitingFor.every((v) => v.answer === 'rejected' || (v.result !== undefined && settling.has(v.result)));
  }

  outcome(village: string): VillageOutcome {
    let outcome = this.villages.get(village);
    if (outcome === undefined) {
      outcome = {};
      this.villages.set(village, outcome);
    }
    return outcome;
  }

  /** The per-village table and summary printed when waiting ends, and the exit code. */
  finish(): AnnounceOutcome {
    const rows = [...this.villages.entries()].sort(([a], [b]) => a.localeCompare(b));
    let rejectedOrFailed = 0;
    let silent = 0;
    const counts = new Map<string, number>();
    const table = rows.map(([village, v]) => {
      const status =
        v.answer === 'rejected'
          ? 'rejected'
          : v.result !== undefined
            ? v.result
            : v.answer === 'accepted'
              ? 'accepted, no start in time'
              : v.online === false
                ? 'offline: no answer (gets it on reconnect, unless it expires first)'
                : 'no answer';
      if (v.answer === 'rejected' || v.result === 'failed') rejectedOrFailed++;
      // An offline village's persistent session keeps the command for it: not a failure of this run.
      else if (v.result === undefined && (v.online !== false || this.command.audience !== 'all')) silent++;
      const key =
        v.answer === 'rejected' ? 'rejected' : (v.result ?? (v.answer === 'accepted' ? 'no start' : v.online === false ? 'offline' : 'no answer'));
      counts.set(key, (counts.get(key) ?? 0) + 1);
      const online = v.online === undefined ? '?' : v.online ? 'online' : 'offline';
      return `  ${village.padEnd(24)} ${online.padEnd(8)} ${status}${v.reason === undefined ? '' : ` (${v.reason})`}`;
    });
    const summary = `summary: ${rows.length} village(s): ${[...counts.entries()].map(([k, n]) => `${n} ${k}`).join(', ') || 'none answered'}`;
    const lines =
      this.command.audience === 'all' || rows.length > 1 ? [`  ${'village'.padEnd(24)} ${'link'.padEnd(8)} outcome`, ...table, summary] : [summary];
    return { exitCode: rejectedOrFailed > 0 ? 1 : silent > 0 ? 3 : 0, lines };
  }
}

function describe(report: ReportPayload): string {
  const parts: string[] = [];
  if (report.priority !== null)
    parts.push(report.level === undefined ? report.priority : `${report.priority} level ${report.level} ${levelNames[report.level] ?? ''}`);
  if (report.status !== null && report.status !== 'actual') parts.push(report.status);
  if (report.zones.length > 0) parts.push(`zones ${report.zones.join(',')}`);
  for (const f of report.faultyZones) parts.push(`zone ${f.zone}: amplifier ${f.amplifier} ${f.fault}`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}
