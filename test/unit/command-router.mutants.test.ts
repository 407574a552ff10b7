import { beforeAll, describe, expect, it } from 'vitest';
import { createCommandGate, type CommandGate, type GateInput } from '../../src/county/command-gate.ts';
import { createCommandRouter, type CommandRejection } from '../../src/county/command-router.ts';
import type { InboundCommand } from '../../src/county/types.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';
import { waitFor } from '../support/wait.ts';

// What the router passes on, beside what it dispatches (command-router.test.ts): the gate's input, and the
// context of a refusal or a handler failure.
const village = 'dongcun';
let county: CountySigner;

beforeAll(async () => {
  county = await createCountySigner({ villageId: village });
});

function route(gate: CommandGate, handlers: { broadcast?: () => void } = {}) {
  const log = memoryLogger();
  const rejected: CommandRejection[] = [];
  const handle = createCommandRouter({
    gate,
    handlers: {
      ack: () => undefined,
      broadcast: handlers.broadcast ?? (() => undefined),
      stop: () => undefined,
      schedule: () => undefined,
      time: () => undefined,
    },
    onRejected: (r) => rejected.push(r),
    onIssuedAt: () => undefined,
    logger: log.logger,
  });
  return { handle, rejected, lines: log.lines };
}

function realGate(): CommandGate {
  return createCommandGate({ villageId: village, keys: [county.keyEntry], maxClockSkewSeconds: 60, maxBytes: 4096, replay: memoryReplayGuard() });
}

describe('county command router, what it passes on', () => {
  it('tells the gate a payload was discarded unread, so it is refused as oversized with its size, not as junk', async () => {
    const r = route(realGate());
    r.handle({
      command: 'broadcast',
      audienceTopic: 'village',
      topic: 'county/dongcun/broadcast',
      payload: Buffer.alloc(0),
      discardedBytes: 300_000,
    });
    await waitFor('one refusal', () => r.rejected.length === 1);
    expect(r.rejected[0]).toMatchObject({ reason: 'oversized', kind: 'broadcast', topic: 'county/dongcun/broadcast' });
    expect(r.rejected[0]?.detail).toContain('300000 bytes');
  });

  it('hands the gate the kind, the audience topic and the bytes, and a discarded size only when there was one', async () => {
    const inputs: GateInput[] = [];
    const gate: CommandGate = {
      verify: (input) => {
        inputs.push(input);
        return Promise.resolve({ ok: false, reason: 'malformed', detail: 'test gate', jti: null });
      },
    };
    const r = route(gate);
    const payload = Buffer.from('a.b.c');
    r.handle({ command: 'stop', audienceTopic: 'all', topic: 'county/all/stop', payload });
    r.handle({ command: 'ack', audienceTopic: 'village', topic: 'county/dongcun/ack', payload: Buffer.alloc(0), discardedBytes: 9 });
    await waitFor('two refusals', () => r.rejected.length === 2);
    expect(inputs[0]).toStrictEqual({ kind: 'stop', audienceTopic: 'all', payload });
    expect(inputs[1]).toStrictEqual({ kind: 'ack', audienceTopic: 'village', payload: Buffer.alloc(0), discardedBytes: 9 });
  });

  it('logs a failed handler with the error and the topic the command came by', async () => {
    const r = route(realGate(), {
      broadcast: () => {
        throw new Error('controller gone');
      },
    });
    const message: InboundCommand = {
      command: 'broadcast',
      audienceTopic: 'village',
      topic: 'county/dongcun/broadcast',
      payload: Buffer.from(await county.broadcast()),
    };
    r.handle(message);
    await waitFor('the handler failure logged', () => r.lines.some((l) => l.msg === 'county command handler failed'));
    const line = r.lines.find((l) => l.msg === 'county command handler failed');
    expect(line).toMatchObject({ topic: 'county/dongcun/broadcast', err: { message: 'controller gone' } });
  });
});
