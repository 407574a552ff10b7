import { describe, expect, it, beforeAll } from 'vitest';
import { createCommandGate } from '../../src/county/command-gate.ts';
import { createCommandRouter, type CommandHandlers, type CommandRejection, type CommandSource } from '../../src/county/command-router.ts';
import type { CommandKind } from '../../src/county/topics.ts';
import type { InboundCommand } from '../../src/county/types.ts';
import { createCountySigner, type CountySigner } from '../support/county-signer.ts';
import { memoryLogger } from '../support/log-sink.ts';
import { memoryReplayGuard } from '../support/memory-replay-guard.ts';
import { waitFor } from '../support/wait.ts';

const village = 'dongcun';
let county: CountySigner;

beforeAll(async () => {
  county = await createCountySigner({ villageId: village });
});

function rig(handlers: Partial<Record<CommandKind, (claims: unknown) => void>> = {}) {
  const log = memoryLogger();
  const handled: Array<[CommandKind, Record<string, unknown>]> = [];
  const sources: CommandSource[] = [];
  const rejected: CommandRejection[] = [];
  const issuedAt: number[] = [];
  const record = (kind: CommandKind) => (claims: unknown, source: CommandSource) => {
    handled.push([kind, claims as Record<string, unknown>]);
    sources.push(source);
    handlers[kind]?.(claims);
  };
  const route = createCommandRouter({
    gate: createCommandGate({ villageId: village, keys: [county.keyEntry], maxClockSkewSeconds: 60, maxBytes: 4096, replay: memoryReplayGuard() }),
    handlers: { ack: record('ack'), broadcast: record('broadcast'), stop: record('stop'), schedule: record('schedule'), time: record('time') },
    onRejected: (r) => rejected.push(r),
    onIssuedAt: (iat) => issuedAt.push(iat),
    logger: log.logger,
  });
  const send = async (command: CommandKind, token: string, audienceTopic: 'village' | 'all' = 'village') => {
    const message: InboundCommand = { command, audienceTopic, topic: `county/${audienceTopic}/${command}`, payload: Buffer.from(token) };
    route(message);
  };
  return { send, handled, sources, rejected, issuedAt, log };
}

describe('county command router', () => {
  it('hands each verified command to the handler of its kind, with its claims, and time to the clock', async () => {
    const r = rig();
    const id = '0190f5a2-1c3e-7000-8000-000000000001';
    await r.send('ack', await county.ack({ id }));
    await r.send('broadcast', await county.broadcast({ jti: 'bcast-0001' }));
    await r.send('stop', await county.stop({ jti: 'stop-0001', target: { jti: 'bcast-0001' } }));
    await waitFor('three commands handled', () => r.handled.length === 3);
    expect(r.handled.map(([kind, claims]) => [kind, claims['cmd'], claims['jti'] ?? null])).toEqual([
      ['ack', 'ack', expect.any(String)],
      ['broadcast', 'broadcast', 'bcast-0001'],
      ['stop', 'stop', 'stop-0001'],
    ]);
    expect(r.handled[0]?.[1]['id']).toBe(id);
    expect(r.issuedAt).toHaveLength(3);
    expect(r.rejected).toEqual([]);
  });

  it('hands a schedule and a time message to their handlers with the topic each came on, every copy, and their iat to the clock', async () => {
    const r = rig();
    const schedule = await county.schedule({ aud: 'all', iat: 1_700_000_000 });
    await r.send('schedule', schedule, 'all');
    await r.send('schedule', await county.schedule(), 'village');
    // A retained copy again (every reconnect): handed on again, for the schedule registry to find it is no newer.
    await r.send('schedule', schedule, 'all');
    await r.send('time', await county.time({ iat: 1_900_000_000, exp: 1_900_000_120 }), 'all');
    await waitFor('four commands handled', () => r.handled.length === 4);
    expect(r.handled.map(([kind]) => kind)).toEqual(['schedule', 'schedule', 'schedule', 'time']);
    expect(r.sources).toEqual([
      { topic: 'county/all/schedule', audienceTopic: 'all' },
      { topic: 'county/village/schedule', audienceTopic: 'village' },
      { topic: 'county/all/schedule', audienceTopic: 'all' },
      { topic: 'county/all/time', audienceTopic: 'all' },
    ]);
    expect(r.issuedAt[0]).toBe(1_700_000_000);
    expect(r.issuedAt[3]).toBe(1_900_000_000);
    expect(r.rejected).toEqual([]);
  });

  it('acts on nothing the gate refused, and passes the refusal on with the kind and topic it came by', async () => {
    const r = rig();
    await r.send('broadcast', 'not.a.jws');
    await r.send('stop', await county.stop({ aud: 'xicun' }));
    await waitFor('two refusals', () => r.rejected.length === 2);
    expect(r.handled).toEqual([]);
    expect(r.issuedAt).toEqual([]);
    expect(r.rejected.map((x) => [x.kind, x.topic, x.reason])).toEqual([
      ['broadcast', 'county/village/broadcast', 'malformed'],
      ['stop', 'county/village/stop', 'wrong-audience'],
    ]);
  });

  it('logs a handler that throws, and routes the next command', async () => {
    const r = rig({
      broadcast: () => {
        throw new Error('controller gone');
      },
    });
    await r.send('broadcast', await county.broadcast());
    await waitFor('the handler failure logged', () => r.log.lines.some((l) => l.msg === 'county command handler failed'));
    await r.send('stop', await county.stop({ target: 'all' }));
    await waitFor('the next command handled', () => r.handled.length === 2);
  });

  it('needs a handler for every command kind (a kind without one does not compile)', () => {
    // @ts-expect-error: `stop` has no handler
    const incomplete: CommandHandlers = { ack: () => undefined, broadcast: () => undefined };
    expect(Object.keys(incomplete)).toEqual(['ack', 'broadcast']);
  });
});
