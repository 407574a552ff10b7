import { describe, expect, it } from 'vitest';
import { countyBroadcastHandlers, toPlayRequest } from '../../src/broadcast/county-requests.ts';
import type { PlayRequest } from '../../src/broadcast/types.ts';
import { broadcastCommandSchema, stopCommandSchema } from '../../src/contract/payloads.ts';
import { memoryLogger } from '../support/log-sink.ts';

const iat = 1_800_000_000;
const zoneIds = ['square', 'school', 'east'];

/** Claims as the gate hands them over: parsed by the payload's own schema, defaults applied. */
function broadcast(more: Record<string, unknown> = {}) {
  return broadcastCommandSchema.parse({
    jti: 'bcast-0001',
    iat,
    exp: iat + 600,
    aud: 'dongcun',
    cmd: 'broadcast',
    priority: 'emergency',
    level: 2,
    status: 'actual',
    zones: ['school'],
    content: { kind: 'tts', text: '山洪预警' },
    ...more,
  });
}

describe('county broadcast → play request', () => {
  it('keeps what the county said, with the expiry in epoch ms, from the county', () => {
    const claims = broadcast();
    expect(toPlayRequest(claims, zoneIds)).toEqual({
      id: 'bcast-0001',
      priority: 'emergency',
      level: 2,
      status: 'actual',
      zones: ['school'],
      content: { kind: 'tts', text: '山洪预警' },
      chime: claims.chime,
      repeat: claims.repeat,
      expiresAt: (iat + 600) * 1000,
      origin: 'county',
    });
  });

  it('turns zones "all" into every zone this village has, and leaves out a level that was not given', () => {
    const request = toPlayRequest(broadcast({ zones: 'all', priority: 'announcement', level: undefined }), zoneIds);
    expect(request.zones).toEqual(zoneIds);
    expect('level' in request).toBe(false);
  });

  it('hands broadcasts to the durable path and stops to the controller, naming the stop command', () => {
    const submitted: PlayRequest[] = [];
    const stops: Array<[unknown, string]> = [];
    const handlers = countyBroadcastHandlers({
      zoneIds,
      submit: (r) => submitted.push(r),
      stopPlayback: (target, reason) => stops.push([target, reason]),
      logger: memoryLogger().logger,
    });
    handlers.broadcast(broadcast());
    expect(submitted.map((r) => r.id)).toEqual(['bcast-0001']);
    const stop = (target: unknown) => stopCommandSchema.parse({ jti: 'stop-0001', iat, exp: iat + 60, aud: 'dongcun', cmd: 'stop', target });
    handlers.stop(stop({ jti: 'bcast-0001' }));
    handlers.stop(stop('all'));
    expect(stops).toEqual([
      [{ requestId: 'bcast-0001' }, 'stopped by the county (stop-0001)'],
      ['all', 'stopped by the county (stop-0001)'],
    ]);
  });
});
