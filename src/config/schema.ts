import { z } from 'zod';

/** Ids that end up in MQTT topics and log lines: no wildcards, separators or spaces. */
const topicSafeId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, "-" and "_" only (it becomes part of an MQTT topic)');

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
    url: z
      .string()
      .regex(/^(mqtt|mqtts|tcp|ssl|ws|wss):\/\/[^/]+/, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
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
    /** Largest county→village payload accepted; anything bigger is dropped unread. */
    maxInboundBytes: z.number().int().min(64).max(1_048_576).default(4096),
    /** Delay between reconnect attempts: doubles from initialMs to maxMs, with jitter. */
    reconnect: backoffSchema.default({ initialMs: 1000, maxMs: 30000 }),
  })
  .strict()
  .refine((c) => !(c.embeddedBroker && c.protocolVersion === 5), {
    message: 'the embedded broker (aedes) speaks MQTT 3.1.1 only: use protocolVersion 4',
    path: ['protocolVersion'],
  })
  .refine((c) => !(c.password !== undefined && c.username === undefined), {
    message: 'password without username',
    path: ['password'],
  });

export const configSchema = z
  .object({
    version: z.literal(1),
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
    /** Folder of device profile files; relative to the config file. Defaults to the shipped `devices/`. */
    profilesDir: z.string().min(1).optional(),
    buses: z.array(busSchema).default([]),
    devices: z.array(deviceSchema).default([]),
    timing: timingSchema.default(() => timingSchema.parse({})),
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
      if (units.has(unitKey)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'unitId'], message: `unit ${dev.unitId} is already used on bus "${dev.bus}"` });
      units.add(unitKey);
    });
  });

export type Config = z.infer<typeof configSchema>;
export type BusConfig = z.infer<typeof busSchema>;
export type DeviceConfig = z.infer<typeof deviceSchema>;
export type DeviceRole = z.infer<typeof deviceRoleSchema>;
export type TimingConfig = z.infer<typeof timingSchema>;
export type CountyConfig = z.infer<typeof countySchema>;
