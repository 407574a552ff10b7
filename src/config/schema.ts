import { createPublicKey } from 'node:crypto';
import * as z from 'zod';
import { ed25519PublicKeyProblem } from '../platform/ed25519-public-key.ts';
import { contentSchema } from '../contract/vocabulary.ts';
import { scheduleDocumentSchema, unplayableProgrammes } from '../contract/schedule.ts';

/** Ids that end up in MQTT topics and log lines: no wildcards, separators or spaces. */
const topicSafeId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, "-" and "_" only (it becomes part of an MQTT topic)');

/**
 * A command key as an installer may paste it: `{kid, x}`, keygen's whole public JWK (`kty`, `crv`, `use`,
 * `alg` dropped once checked) or `{kid, pem}`. A private JWK is refused outright: it must never leave the county.
 */
function asKidAndX(value: unknown, ctx: z.core.$RefinementCtx<unknown>): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const { kty, crv, use, alg, pem, ...rest } = value as Record<string, unknown>;
  if ('d' in rest) {
    ctx.addIssue({
      code: 'custom',
      message: 'this is the county\'s PRIVATE key (it has "d"): keep it at the county and paste the public {"kid","x"} that keygen printed',
    });
    return value;
  }
  if (
    (kty !== undefined && kty !== 'OKP') ||
    (crv !== undefined && crv !== 'Ed25519') ||
    (alg !== undefined && alg !== 'EdDSA' && alg !== 'Ed25519')
  ) {
    ctx.addIssue({
      code: 'custom',
      message: `an Ed25519 key is expected (kty "OKP", crv "Ed25519"), not kty ${JSON.stringify(kty)}, crv ${JSON.stringify(crv)}`,
    });
    return value;
  }
  if (use !== undefined && use !== 'sig') ctx.addIssue({ code: 'custom', message: `use: ${JSON.stringify(use)}, a signing key ("sig") is expected` });
  if (pem === undefined) return rest;
  try {
    const jwk = createPublicKey(String(pem)).export({ format: 'jwk' });
    if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error(`a ${jwk.crv ?? jwk.kty ?? 'non-Ed25519'} key`);
    return { ...rest, x: jwk.x };
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `pem: not an Ed25519 public key in PEM (${error instanceof Error ? error.message : String(error)})` });
    return value;
  }
}

const serialLineSettings = {
  path: z.string().min(1),
  baudRate: z.number().int().positive().default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
};

export const busSchema = z.discriminatedUnion('kind', [
  z.object({ id: topicSafeId, kind: z.literal('modbus-rtu'), ...serialLineSettings }).strict(),
  z.object({ id: topicSafeId, kind: z.literal('line'), ...serialLineSettings }).strict(),
  z
    .object({
      id: topicSafeId,
      kind: z.literal('modbus-tcp'),
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535).default(502),
    })
    .strict(),
  z.object({ id: topicSafeId, kind: z.literal('simulated') }).strict(),
]);

export const deviceRoleSchema = z.enum(['alarm-column', 'relay-board', 'amplifier']);

export const deviceSchema = z
  .object({
    id: topicSafeId,
    bus: topicSafeId,
    unitId: z.number().int().min(0).max(247),
    profile: z.string().min(1),
    role: deviceRoleSchema,
    label: z.string().min(1).max(120),
    /** Installer commissioning: presses on this terminal raise `test` alarms, not `button` alarms. */
    testMode: z.boolean().default(false),
    /** Loudspeaker zone that plays the local alarm when this terminal's alarm is not acked in time. */
    zone: topicSafeId.optional(),
  })
  .strict();

const backoffSchema = z
  .object({
    initialMs: z.number().int().positive(),
    maxMs: z.number().int().positive(),
  })
  .strict()
  .refine((b) => b.maxMs >= b.initialMs, { message: 'maxMs must be >= initialMs', path: ['maxMs'] });

export const timingSchema = z
  .object({
    pollIntervalMs: z.number().int().min(10).default(100),
    requestTimeoutMs: z.number().int().min(10).default(250),
    /** Consecutive failed polls that make a device `offline`. */
    offlineAfterFailures: z.number().int().min(1).default(3),
    /** How often an offline device is still tried, so the bus is not clogged by timeouts. */
    offlinePollIntervalMs: z.number().int().min(100).default(5000),
    /**
     * An alarm column whose button does not latch, and whose measured worst poll gap exceeds this, raises a
     * fault: a press shorter than the gap can go unseen.
     */
    maxMissablePressMs: z.number().int().min(10).default(500),
    debounceMs: z.number().int().min(0).default(30),
    ackTimeoutMs: z.number().int().min(100).default(10000),
    /** How long the column shows `received` after the county's ack before going dark. */
    indicatorHoldMs: z.number().int().min(0).default(60000),
    retry: backoffSchema.default({ initialMs: 5000, maxMs: 60000 }),
    reopen: backoffSchema.default({ initialMs: 1000, maxMs: 30000 }),
    healthIntervalMs: z.number().int().min(1000).default(30000),
  })
  .strict();

const tlsSchema = z
  .object({
    ca: z.string().min(1),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: 'cert and key go together',
    path: ['cert'],
  });

export const countySchema = z
  .object({
    url: z.string().regex(/^(mqtt|mqtts|tcp|ssl|ws|wss):\/\/[^/]+/, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
    /** Run an in-process broker on the url's host and port (demo / single-village use). */
    embeddedBroker: z.boolean().default(false),
    clientId: z.string().min(1).max(64).optional(),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    tls: tlsSchema.optional(),
    keepaliveSeconds: z.number().int().min(5).max(3600).default(30),
    protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'topic levels of letters, digits, "-" and "_", no wildcards')
      .default('village-edge'),
    /**
     * Largest county→village payload (a compact JWS) accepted. 32 KiB holds a broadcast with the 2,000
     * Chinese characters a tts text may have (~9 KB as UTF-8 in base64url, ~17 KB if the county's JSON
     * escapes them as \uXXXX) with room for the rest of the claims.
     */
    maxInboundBytes: z.number().int().min(64).max(1_048_576).default(32_768),
    /**
     * Largest MQTT packet the link takes in at all, whatever its topic: a bigger PUBLISH is discarded as it
     * streams by (never held in memory) and acknowledged; MQTT 5 tells the broker this limit at connect.
     */
    maxInboundPacketBytes: z.number().int().min(2048).max(16_777_216).default(65_536),
    /**
     * Largest signed programme schedule (`cmd/schedule`) accepted; its topics alone take packets up to this
     * + 1024. 256 KiB holds a few hundred programmes with long Chinese texts (~1 KB each as JSON in base64url).
     */
    maxScheduleBytes: z
      .number()
      .int()
      .min(4096)
      .max(4 * 1024 * 1024)
      .default(256 * 1024),
    /**
     * Public keys that may sign county commands (Ed25519, JWS EdDSA), by `kid`; several at once so a key
     * can be rotated without a gap. `x` is the raw 32-byte public key, base64url (as in a JWK).
     */
    commandKeys: z
      .array(
        // Also taken as a whole public JWK (as keygen's .public.jwk.json has it) or as a PEM public key.
        z.preprocess(
          asKidAndX,
          z
            .object({
              kid: z.string().min(1).max(64),
              x: z
                .string()
                .regex(/^[A-Za-z0-9_-]{43}$/, 'a 32-byte Ed25519 public key, base64url (43 characters)')
                // A small-order key would let one fixed signature verify for every message: refuse it here, before deployment.
                .superRefine((x, ctx) => {
                  const problem = ed25519PublicKeyProblem(Buffer.from(x, 'base64url'));
                  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
                }),
            })
            .strict(),
        ),
      )
      .default([])
      .superRefine((keys, ctx) => {
        const seen = new Set<string>();
        keys.forEach((k, i) => {
          if (seen.has(k.kid)) ctx.addIssue({ code: 'custom', path: [i, 'kid'], message: `duplicate kid "${k.kid}"` });
          seen.add(k.kid);
        });
      }),
    /** No county keys on purpose: every county command (acks too) is refused. check-config fails on empty keys otherwise. */
    commandsDisabled: z.boolean().default(false),
    /** A command whose `iat` lies further in the future than this is refused (clocks drift; replays don't). */
    maxClockSkewSeconds: z.number().int().min(0).max(3600).default(60),
    /** A broadcast or stop whose `exp` lies further after its `iat` than this is refused (a long-lived capture is a long-lived replay). */
    maxCommandLifetimeSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 24 * 3600)
      .default(24 * 3600),
    /** Delay between reconnect attempts: doubles from initialMs to maxMs, with jitter. */
    reconnect: backoffSchema.default({ initialMs: 1000, maxMs: 30000 }),
  })
  .strict()
  .refine((c) => !(c.embeddedBroker && c.protocolVersion === 5), {
    message: 'the embedded broker (aedes) speaks MQTT 3.1.1 only: use protocolVersion 4',
    path: ['protocolVersion'],
  })
  .refine((c) => c.maxInboundPacketBytes >= c.maxInboundBytes + 1024, {
    message: 'must be at least maxInboundBytes + 1024 (room for the topic and headers around the largest payload)',
    path: ['maxInboundPacketBytes'],
  })
  .refine((c) => !(c.password !== undefined && c.username === undefined), {
    message: 'password without username',
    path: ['password'],
  });

const relayChannelSchema = z.object({ device: topicSafeId, channel: z.number().int().min(0).max(63) }).strict();

/** argv templates, no shell: `{text}`, `{file}`, `{volume}` are replaced in single arguments. */
const commandTemplate = z.array(z.string().min(1)).min(1);
/** A template that must use `placeholder`, or it would play nothing of what it was given. */
const templateWith = (placeholder: string) =>
  commandTemplate.refine((argv) => argv.some((arg) => arg.includes(placeholder)), `must contain ${placeholder} in one of its arguments`);

const volume = z.number().int().min(0).max(100);

/** ALSA's PCM names: `default`, `hw:0,0`, `plughw:CARD=Device,DEV=0`, `null`; one argument, no spaces. */
const alsaDevice = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:,=@-]+$/, 'an ALSA PCM name such as "default", "hw:0,0" or "plughw:CARD=Device,DEV=0"');

const defaultOutputCheck = ['aplay', '-q', '-D', '{device}', '-t', 'raw', '-f', 'S16_LE', '-r', '8000', '-c', '1', '-s', '1', '/dev/zero'];

/**
 * The sound output every player plays through. It is checked by opening it before each item and every
 * `checkIntervalMs` while nothing plays: a card that is missing or fails is an `audio` fault and a `failed`
 * item, never a `finished` one that nobody heard.
 */
export const outputSchema = z
  .object({
    /** Put in for `{device}` in the player and check templates. */
    device: alsaDevice.default('default'),
    /** Opens the device and writes one silent sample; exit 0 means it opened. */
    check: templateWith('{device}').default(defaultOutputCheck),
    checkIntervalMs: z.number().int().min(1000).max(86_400_000).default(300_000),
    /** A check that has not answered by then counts as failed (a wedged USB card hangs in open). */
    checkTimeoutMs: z.number().int().min(100).max(30_000).default(3000),
  })
  .strict();

const defaultPlayer = {
  // `--`: a text starting with `-` is speech, not options. WAV on stdout, played by `ttsOutput`.
  tts: ['espeak-ng', '-v', 'cmn', '--stdout', '--', '{text}'],
  ttsOutput: ['aplay', '-q', '-D', '{device}'],
  // mpg123 needs an explicit output module: without one it never exits on a machine without sound (TOOLCHAIN).
  media: { '.mp3': ['mpg123', '-q', '-o', 'alsa', '-a', '{device}', '{file}'], '.wav': ['aplay', '-q', '-D', '{device}', '{file}'] },
};

export const broadcastSchema = z
  .object({
    zones: z.array(z.object({ id: topicSafeId, label: z.string().min(1), relay: relayChannelSchema, amplifier: topicSafeId }).strict()).default([]),
    amplifiers: z
      .array(
        z
          .object({
            id: topicSafeId,
            power: relayChannelSchema,
            /** A device whose profile declares amplifier status registers (power, overheat, line fault). */
            statusDevice: topicSafeId.optional(),
          })
          .strict(),
      )
      .default([]),
    /** Between switching on one amplifier and the next, so their inrush currents do not add up. */
    powerOnGapMs: z.number().int().min(0).max(10_000).default(500),
    /** After the last amplifier is on, before any sound. */
    warmUpMs: z.number().int().min(0).max(30_000).default(1500),
    /** Amplifiers stay on this long after the last item, so back-to-back items do not chatter the relays. */
    idleTailMs: z.number().int().min(0).max(600_000).default(20_000),
    volume: z
      .object({ emergency: volume.default(100), 'local-alarm': volume.default(90), announcement: volume.default(80), scheduled: volume.default(60) })
      .strict()
      .default({ emergency: 100, 'local-alarm': 90, announcement: 80, scheduled: 60 }),
    chime: contentSchema.optional(),
    drillChime: contentSchema.optional(),
    /** Folder of media files; relative to the config file. */
    library: z.string().min(1).default('media'),
    output: outputSchema.default(() => outputSchema.parse({})),
    player: z
      .object({
        tts: templateWith('{text}').default(defaultPlayer.tts),
        /**
         * Plays what `tts` writes on its stdout (a pipe between the two, no shell), so a run fails when the
         * device does. `null`: the tts command plays by itself (and its exit code is all there is to judge).
         */
        ttsOutput: commandTemplate.nullable().default(defaultPlayer.ttsOutput),
        /** By file extension, e.g. `.mp3`, `.wav`. */
        media: z.record(z.string().regex(/^\.[a-z0-9]+$/), templateWith('{file}')).default(defaultPlayer.media),
        /** Run before each item with `{volume}` (0–100); none by default. */
        volume: templateWith('{volume}').optional(),
        killTimeoutMs: z.number().int().min(100).max(30_000).default(2000),
        /** A player that runs longer than this is stopped and reported `failed`: never a hang. */
        maxRunMs: z
          .number()
          .int()
          .min(1000)
          .default(15 * 60_000),
      })
      .strict()
      .default(() => ({
        ...defaultPlayer,
        killTimeoutMs: 2000,
        maxRunMs: 15 * 60_000,
      })),
    /** Played in a terminal's zone when its alarm is not acked within the ack timeout. */
    localAlarm: z
      .object({ content: contentSchema, repeat: z.number().int().min(1).max(20).default(3) })
      .strict()
      .optional(),
  })
  .strict();

/** The programme schedule: the village's own document, and how programmes are fired, fetched and logged. */
export const scheduleConfigSchema = z
  .object({
    /** The village's own schedule, run until the county sends one on `cmd/schedule` (which then wins). */
    document: scheduleDocumentSchema.optional(),
    /** A slot found late by up to this (after a restart, a clock jump) still plays; later ones are `missed`. */
    graceSeconds: z.number().int().min(0).max(3600).default(120),
    /** Media of programmes due within this are fetched ahead of time. */
    mediaLookaheadHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 14)
      .default(48),
    /** The completion log keeps firings at least this long (pruned daily). */
    retentionDays: z.number().int().min(90).max(3650).default(90),
    media: z
      .object({
        /** Programme media in the library (`<broadcast.library>/programmes/`) beyond this evict the least recently used unreferenced files. */
        quotaBytes: z
          .number()
          .int()
          .min(1024 * 1024)
          .default(1024 * 1024 * 1024),
        concurrency: z.number().int().min(1).max(8).default(2),
        /** A download that takes longer, or receives nothing for `stallSeconds`, is cut and tried again later. */
        timeoutSeconds: z
          .number()
          .int()
          .min(10)
          .max(24 * 3600)
          .default(1800),
        stallSeconds: z.number().int().min(1).max(600).default(30),
        /** PEM file of the CA that signed the county's media server (HTTPS); relative to the config file. */
        ca: z.string().min(1).optional(),
      })
      .strict()
      .default(() => ({ quotaBytes: 1024 * 1024 * 1024, concurrency: 2, timeoutSeconds: 1800, stallSeconds: 30 })),
  })
  .strict();

/** The village office console: a web page on the Pi for officials and installers; off until enabled. */
export const consoleConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The address the page is served on: the office network's (with `tls`). Served directly, not behind a proxy: the lock-out and the audit trail go by the client's own address. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(8080),
    /** HTTPS with these PEM files (relative to the config file); plain HTTP without. */
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
    /** Accounts made by `village-edge user add`; owner-only; relative to the config file. */
    usersFile: z.string().min(1).default('console-users.json'),
    /** A login lasts this long (minutes; fractions allowed), then the page asks again. */
    sessionMinutes: z
      .number()
      .min(0.05)
      .max(7 * 24 * 60)
      .default(480),
    lockout: z
      .object({
        /** Failed logins (per account, and per address) allowed before a lock-out. */
        maxFailures: z.number().int().min(1).max(100).default(5),
        /** The first lock-out; each further failure while counted doubles it, up to `maxSeconds`. */
        baseSeconds: z.number().min(0.1).max(3600).default(30),
        maxSeconds: z.number().min(1).max(86_400).default(900),
      })
      .strict()
      .default({ maxFailures: 5, baseSeconds: 30, maxSeconds: 900 }),
    /** A voice recording made in the page may last this long. */
    maxRecordingSeconds: z.number().int().min(5).max(600).default(120),
  })
  .strict();

export const configSchema = z
  .object({
    version: z.literal(2),
    village: z
      .object({
        // `all` addresses every village on county→village topics, so no village may be called that.
        id: topicSafeId.refine((id) => id !== 'all', '"all" is reserved for messages to every village'),
        name: z.string().min(1),
        location: z
          .object({
            lat: z.number().min(-90).max(90),
            lon: z.number().min(-180).max(180),
            address: z.string().optional(),
          })
          .strict(),
      })
      .strict(),
    county: countySchema,
    dataDir: z.string().min(1),
    storage: z
      .object({
        /**
         * Bytes of the data directory held for the outbox (a file it deletes when the card is full), so alarms
         * are still stored durably after journald or media filled the card; 0 for none.
         */
        reserveBytes: z
          .number()
          .int()
          .min(0)
          .max(1 << 30)
          .default(8 * 1024 * 1024),
        /** While the card takes no writes, how often it is tried again. */
        retryMs: z.number().int().min(100).max(600_000).default(5000),
      })
      .strict()
      .default({ reserveBytes: 8 * 1024 * 1024, retryMs: 5000 }),
    /** Folder of the installer's own device profiles, read after the shipped `devices/` (adds and replaces models); relative to the config file. */
    profilesDir: z.string().min(1).optional(),
    clock: z
      .object({
        /**
         * When the system clock may be believed: `timesyncd` once systemd-timesyncd has synchronised it (its
         * flag file exists), `trusted` always (a Pi with a battery clock, chrony), `untrusted` never. Until
         * then time is never earlier than the newest verified county command's `iat`.
         */
        systemClock: z.enum(['timesyncd', 'trusted', 'untrusted']).default('timesyncd'),
        synchronizedFlag: z.string().min(1).default('/run/systemd/timesync/synchronized'),
      })
      .strict()
      .default({ systemClock: 'timesyncd', synchronizedFlag: '/run/systemd/timesync/synchronized' }),
    /** `village-edge status` reads the running service through this unix socket (owner-only, 0600). */
    status: z
      .object({
        /** Default `<dataDir>/status.sock`; relative to the config file. A unix socket path holds at most 107 bytes. */
        socket: z.string().min(1).max(107).optional(),
        /** Where the kernel lists thermal zones (`thermal_zoneN/temp`, millidegrees); a board without them reports none. */
        thermalDir: z.string().min(1).default('/sys/class/thermal'),
      })
      .strict()
      .default({ thermalDir: '/sys/class/thermal' }),
    buses: z.array(busSchema).default([]),
    devices: z.array(deviceSchema).default([]),
    timing: timingSchema.default(() => timingSchema.parse({})),
    broadcast: broadcastSchema.default(() => broadcastSchema.parse({})),
    schedule: scheduleConfigSchema.default(() => scheduleConfigSchema.parse({})),
    console: consoleConfigSchema.default(() => consoleConfigSchema.parse({})),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const busIds = new Set<string>();
    cfg.buses.forEach((bus, i) => {
      if (busIds.has(bus.id)) ctx.addIssue({ code: 'custom', path: ['buses', i, 'id'], message: `duplicate bus id "${bus.id}"` });
      busIds.add(bus.id);
    });
    const deviceIds = new Set<string>();
    const units = new Set<string>();
    cfg.devices.forEach((dev, i) => {
      if (deviceIds.has(dev.id)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `duplicate device id "${dev.id}"` });
      deviceIds.add(dev.id);
      if (!busIds.has(dev.bus)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'bus'], message: `no bus with id "${dev.bus}"` });
      const unitKey = `${dev.bus}/${dev.unitId}`;
      if (units.has(unitKey))
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'unitId'], message: `unit ${dev.unitId} is already used on bus "${dev.bus}"` });
      units.add(unitKey);
    });
    const devicesById = new Map(cfg.devices.map((d) => [d.id, d]));
    const relayCheck = (ref: { device: string }, path: (string | number)[]) => {
      const dev = devicesById.get(ref.device);
      if (dev === undefined) ctx.addIssue({ code: 'custom', path: [...path, 'device'], message: `no device with id "${ref.device}"` });
      else if (dev.role !== 'relay-board')
        ctx.addIssue({ code: 'custom', path: [...path, 'device'], message: `device "${ref.device}" is a ${dev.role}, not a relay-board` });
    };
    const amplifierIds = new Set<string>();
    cfg.broadcast.amplifiers.forEach((amp, i) => {
      if (amplifierIds.has(amp.id))
        ctx.addIssue({ code: 'custom', path: ['broadcast', 'amplifiers', i, 'id'], message: `duplicate amplifier id "${amp.id}"` });
      amplifierIds.add(amp.id);
      relayCheck(amp.power, ['broadcast', 'amplifiers', i, 'power']);
      if (amp.statusDevice !== undefined && !devicesById.has(amp.statusDevice))
        ctx.addIssue({ code: 'custom', path: ['broadcast', 'amplifiers', i, 'statusDevice'], message: `no device with id "${amp.statusDevice}"` });
    });
    const zoneIds = new Set<string>();
    cfg.broadcast.zones.forEach((zone, i) => {
      if (zoneIds.has(zone.id)) ctx.addIssue({ code: 'custom', path: ['broadcast', 'zones', i, 'id'], message: `duplicate zone id "${zone.id}"` });
      zoneIds.add(zone.id);
      relayCheck(zone.relay, ['broadcast', 'zones', i, 'relay']);
      if (!amplifierIds.has(zone.amplifier))
        ctx.addIssue({ code: 'custom', path: ['broadcast', 'zones', i, 'amplifier'], message: `no amplifier with id "${zone.amplifier}"` });
    });
    const village = { zoneIds, mediaExtensions: new Set(Object.keys(cfg.broadcast.player.media)) };
    for (const { index, missingZones, unplayableMedia } of unplayableProgrammes(cfg.schedule.document ?? { programmes: [] }, village)) {
      const path = ['schedule', 'document', 'programmes', index];
      for (const zone of missingZones) ctx.addIssue({ code: 'custom', path: [...path, 'zones'], message: `no broadcast zone with id "${zone}"` });
      if (unplayableMedia !== null)
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'content', 'url'],
          message: `no broadcast.player.media template plays "${unplayableMedia}" files`,
        });
    }
    cfg.devices.forEach((dev, i) => {
      if (dev.zone !== undefined && !zoneIds.has(dev.zone))
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'zone'], message: `no broadcast zone with id "${dev.zone}"` });
    });
  });

export type Config = z.infer<typeof configSchema>;
export type BusConfig = z.infer<typeof busSchema>;
export type DeviceConfig = z.infer<typeof deviceSchema>;
export type DeviceRole = z.infer<typeof deviceRoleSchema>;
export type TimingConfig = z.infer<typeof timingSchema>;
export type CountyConfig = z.infer<typeof countySchema>;
export type BroadcastConfig = z.infer<typeof broadcastSchema>;
export type ScheduleConfig = z.infer<typeof scheduleConfigSchema>;
export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;
