import type * as z from 'zod';
import { levelNames } from './announce-outcome.ts';
import { alarmPayloadSchema, faultPayloadSchema, reportPayloadSchema, statePayloadSchema, type ReportPayload } from '../contract/payloads.ts';
import type { UpKind } from './topics.ts';

/**
 * The dispatch desk of `village-edge county watch`: one readable line per message a village sends, and
 * which of them to acknowledge. Acks are signed by this desk's key; a village that refuses them says so in
 * a `rejected` report, which the desk shows and answers at most once, so a refused ack cannot feed a loop
 * of report → ack → refused → report.
 */

/** Enough to recognise this desk's acks in a village's rejections; older ones are forgotten. */
const REMEMBERED_ACKS = 10_000;

interface SentAck {
  village: string;
  /** What the ack acknowledged: `alarm 0f8e…`. */
  what: string;
  /** Whether it acknowledged a village's report that one of our acks was refused. */
  ofRefusal: boolean;
}

export type DeskMessage =
  | { kind: UpKind; village: string; payload: unknown; valid: true }
  | { kind: UpKind; village: string; raw: string; valid: false; problem: string };

export interface DeskDecision {
  lines: string[];
  /** Set when the message is to be acknowledged: the id and what it is, for the printed line. */
  ack?: { id: string; what: string; ofRefusal: boolean };
}

const schemas = { alarm: alarmPayloadSchema, fault: faultPayloadSchema, report: reportPayloadSchema, state: statePayloadSchema } as const;

export function parseDeskMessage(kind: UpKind, village: string, payload: Buffer): DeskMessage {
  const raw = payload.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { kind, village, raw, valid: false, problem: 'not JSON' };
  }
  if (kind === 'health') return { kind, village, payload: json, valid: true };
  const parsed = (schemas[kind] as z.ZodType).safeParse(json);
  if (!parsed.success)
    return {
      kind,
      village,
      raw,
      valid: false,
      problem: parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; '),
    };
  return { kind, village, payload: parsed.data, valid: true };
}

export class Desk {
  private readonly sentAcks = new Map<string, SentAck>();
  /** Ids of `rejected` reports already acked once: a copy of one is not acked again. */
  private readonly answeredRefusals = new Set<string>();

  constructor(private readonly options: { kid?: string; ack: boolean }) {}

  /** What to print for one message, and whether to ack it. */
  take(message: DeskMessage): DeskDecision {
    const { village } = message;
    if (!message.valid) return { lines: [`${village} ${message.kind} (not as the contract says: ${message.problem}) ${message.raw}`] };
    switch (message.kind) {
      case 'alarm': {
        const a = alarmPayloadSchema.parse(message.payload);
        const extras = [
          `presses ${a.presses}`,
          `attempt ${a.attempt}`,
          ...(a.followUpOf === undefined ? [] : [`follow-up of ${a.followUpOf}`]),
          ...(a.clockTrusted === false ? ['village clock not trusted'] : []),
          ...(a.durable === false ? ['not yet on the village card'] : []),
        ];
        const where = a.location.address === undefined ? a.terminal : `${a.terminal} (${a.location.address})`;
        return this.acked(`${village} ALARM ${a.type} at ${where}, raised ${a.raisedAt}; ${extras.join(', ')}; id ${a.id}`, a.id, `alarm ${a.id}`);
      }
      case 'fault': {
        const f = faultPayloadSchema.parse(message.payload);
        return this.acked(`${village} fault ${f.kind} ${f.subject}: ${f.detail} (attempt ${f.attempt}; id ${f.id})`, f.id, `fault ${f.id}`);
      }
      case 'report':
        return this.report(village, reportPayloadSchema.parse(message.payload));
      case 'state': {
        const s = statePayloadSchema.parse(message.payload);
        const how = s.online
          ? `online${s.since === undefined ? '' : ` since ${s.since}`}`
          : s.since === undefined
            ? 'OFFLINE (last will: its link died without a goodbye)'
            : `offline since ${s.since} (clean shutdown)`;
        return { lines: [`${village} ${how}${s.version === undefined ? '' : `, version ${s.version}`}`] };
      }
      case 'health':
        return { lines: [] };
    }
  }

  /** Call once an ack is published, so a village's refusal of it can be recognised. */
  sent(ackJti: string, village: string, ack: NonNullable<DeskDecision['ack']>): void {
    this.sentAcks.set(ackJti, { village, what: ack.what, ofRefusal: ack.ofRefusal });
    if (this.sentAcks.size > REMEMBERED_ACKS) this.sentAcks.delete(this.sentAcks.keys().next().value!);
  }

  private acked(line: string, id: string, what: string, ofRefusal = false): DeskDecision {
    return this.options.ack ? { lines: [line], ack: { id, what, ofRefusal } } : { lines: [line] };
  }

  private report(village: string, r: ReportPayload): DeskDecision {
    const detail = [
      ...(r.priority === null ? [] : [r.level === undefined ? r.priority : `${r.priority} level ${r.level} ${levelNames[r.level] ?? ''}`]),
      ...(r.status === null || r.status === 'actual' ? [] : [r.status]),
      ...(r.zones.length === 0 ? [] : [`zones ${r.zones.join(',')}`]),
      ...r.faultyZones.map((f) => `zone ${f.zone}: amplifier ${f.amplifier} ${f.fault}`),
    ];
    const line = `${village} report ${r.jti ?? '(no jti)'} ${r.event === 'rejected' || r.event === 'failed' ? r.event.toUpperCase() : r.event}${detail.length === 0 ? '' : ` (${detail.join(', ')})`}${r.reason === undefined ? '' : `: ${r.reason}`} (attempt ${r.attempt}; id ${r.id})`;
    if (r.event !== 'rejected') return this.acked(line, r.id, `report ${r.id}`);

    const ours = r.jti === null ? undefined : this.sentAcks.get(r.jti);
    const reason = r.reason ?? '';
    const keyRefused =
      r.jti === null && this.options.kid !== undefined && reason.startsWith('unknown-kid') && reason.includes(JSON.stringify(this.options.kid));
    const lines = [line];
    if (ours !== undefined) lines.push(`${village} ACK REJECTED: the village refused this desk's ack of ${ours.what}`);
    if (keyRefused)
      lines.push(
        `${village} ACK REJECTED: the village does not know this desk's key ${this.options.kid}, so it takes none of its acks; add the key's {kid, x} to its county.commandKeys`,
      );
    if (!this.options.ack) return { lines };
    // Each answer to a refusal could be refused in turn: answer a refusal once, and never a refusal of such an answer.
    if (keyRefused) return { lines: [...lines, `${village} left unacked: an ack signed with the same key would be refused the same way`] };
    if (ours?.ofRefusal === true)
      return {
        lines: [...lines, `${village} left unacked: the refused ack was itself the answer to a refusal, and answering again would feed a loop`],
      };
    if (this.answeredRefusals.has(r.id)) return { lines: [...lines, `${village} left unacked: this rejection was acked once already`] };
    this.answeredRefusals.add(r.id);
    if (this.answeredRefusals.size > REMEMBERED_ACKS) this.answeredRefusals.delete(this.answeredRefusals.values().next().value!);
    return { lines, ack: { id: r.id, what: `report ${r.id}`, ofRefusal: ours !== undefined } };
  }
}
