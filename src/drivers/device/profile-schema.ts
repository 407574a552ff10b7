import * as z from 'zod';

/**
 * A device profile describes one hardware model as data (files in `devices/`), so that a new model is a
 * new file, not new code. Addresses are zero-based protocol addresses, as on the wire.
 */

export const modbusTableSchema = z.enum(['coils', 'discrete-inputs', 'holding-registers', 'input-registers']);
export type ModbusTable = z.infer<typeof modbusTableSchema>;

const address = z.number().int().min(0).max(65535);

const writeSchema = z
  .object({
    table: z.enum(['coils', 'holding-registers']),
    address,
    value: z.number().int().min(0).max(65535),
  })
  .strict()
  .refine((w) => w.table !== 'coils' || w.value <= 1, { message: 'a coil takes 0 or 1', path: ['value'] });
export type ModbusWrite = z.infer<typeof writeSchema>;

export const inputNames = ['button', 'tamper', 'stop'] as const;
export const inputNameSchema = z.enum(inputNames);
export type InputName = z.infer<typeof inputNameSchema>;

/**
 * Conditions a device reports about itself (an amplifier's power stage, thermal and speaker-line
 * monitors). `power` is active while the power stage is on; the others are active while faulty.
 */
export const statusConditions = ['power', 'overheat', 'line-fault'] as const;
export const statusConditionSchema = z.enum(statusConditions);
export type StatusCondition = z.infer<typeof statusConditionSchema>;

export const indicatorStates = ['off', 'sent', 'received', 'not-received'] as const;
export const indicatorStateSchema = z.enum(indicatorStates);
export type IndicatorState = z.infer<typeof indicatorStateSchema>;

const registerTables: readonly ModbusTable[] = ['holding-registers', 'input-registers'];

/** Where one on/off fact is read: a bit table entry, or one bit of a register. */
const readPointShape = {
  table: modbusTableSchema,
  address,
  bit: z.number().int().min(0).max(15).optional(),
  /** Reads 0 when active (e.g. a normally-closed tamper loop or stop circuit). */
  activeLow: z.boolean().default(false),
};

function bitOnlyInRegisters<S extends z.ZodType<{ table: ModbusTable; bit?: number | undefined }>>(schema: S): S {
  return schema.refine((p) => p.bit === undefined || registerTables.includes(p.table), {
    message: 'bit is only for register tables',
    path: ['bit'],
  });
}

/** An input to read: the villager's or operator's hand on the device. */
const modbusInputSchema = bitOnlyInRegisters(
  z
    .object({
      ...readPointShape,
      /**
       * The device holds the input active after a press until the controller resets it, so a press
       * shorter than the poll interval is never missed. Without a latch such a press can be.
       */
      latch: z
        .object({ reset: z.array(writeSchema).min(1) })
        .strict()
        .optional(),
    })
    .strict(),
);
export type ModbusInput = z.infer<typeof modbusInputSchema>;

// A status is a level the device holds for as long as it lasts: nothing to latch, only where to read it.
const statusPointSchema = bitOnlyInRegisters(z.object(readPointShape).strict());
/** Where one on/off fact is read; every input and status point is one. */
export type ReadPoint = z.infer<typeof statusPointSchema>;

const pollBlockSchema = z
  .object({ table: modbusTableSchema, address, count: z.number().int().min(1).max(2000) })
  .strict()
  .refine((b) => !registerTables.includes(b.table) || b.count <= 125, {
    message: 'a register block holds at most 125 registers',
    path: ['count'],
  });
export type PollBlock = z.infer<typeof pollBlockSchema>;

const modbusProfileSchema = z
  .object({
    schema: z.literal(1),
    model: z.string().min(1),
    description: z.string().default(''),
    protocol: z.literal('modbus'),
    /** Blocks read on every poll; every input and status point must lie inside one of them. */
    poll: z.array(pollBlockSchema).min(1),
    inputs: z.partialRecord(inputNameSchema, modbusInputSchema).default({}),
    /** Where the device reports on itself; absent on devices that do not (alarm columns, relay boards). */
    status: z
      .partialRecord(statusConditionSchema, statusPointSchema)
      .refine((s) => Object.values(s).some((p) => p !== undefined), 'at least one condition, or no status section')
      .optional(),
    /** What to write to show each state to the villager. */
    indicator: z.partialRecord(indicatorStateSchema, z.array(writeSchema)).optional(),
    relays: z
      .object({ table: z.literal('coils'), address, count: z.number().int().min(1).max(64) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((profile, ctx) => {
    const sections = [
      ['inputs', profile.inputs],
      ['status', profile.status ?? {}],
    ] as const;
    for (const [section, points] of sections)
      for (const [name, point] of Object.entries(points)) {
        if (point === undefined || coveringBlock(profile.poll, point) >= 0) continue;
        ctx.addIssue({
          code: 'custom',
          path: [section, name, 'address'],
          message: `${point.table} ${point.address} is not inside any poll block`,
        });
      }
  });

/** Index of the poll block whose values hold this point, or -1. */
export function coveringBlock(poll: readonly PollBlock[], point: { table: ModbusTable; address: number }): number {
  return poll.findIndex((b) => b.table === point.table && point.address >= b.address && point.address < b.address + b.count);
}

/**
 * Line protocol, NMEA-like: `$<talker>,<unit>,<verb>[,<arg>...]*<checksum>` then the delimiter.
 * The checksum is the XOR of every byte between `$` and `*`, as two upper-case hex digits.
 */
const lineProfileSchema = z
  .object({
    schema: z.literal(1),
    model: z.string().min(1),
    description: z.string().default(''),
    protocol: z.literal('line'),
    line: z
      .object({
        talker: z.string().regex(/^[A-Z]{2,5}$/, 'two to five upper-case letters'),
        delimiter: z.enum(['\r\n', '\n']).default('\r\n'),
        maxLength: z.number().int().min(16).max(1024).default(96),
        checksum: z.literal('xor8-hex'),
        /** Device verbs and what each means. */
        events: z
          .record(
            z.string().regex(/^[A-Z]{2,8}$/),
            z.discriminatedUnion('kind', [
              z.object({ kind: z.literal('input'), input: inputNameSchema, active: z.boolean() }).strict(),
              z.object({ kind: z.literal('heartbeat') }).strict(),
            ]),
          )
          .refine((e) => Object.keys(e).length > 0, 'at least one event'),
        /** The device is offline when no line at all arrives for this long. */
        silenceTimeoutMs: z.number().int().min(100).default(15000),
        /** Controller→device lines (verb and args after the unit) per indicator state. */
        indicator: z.partialRecord(indicatorStateSchema, z.string().regex(/^[A-Z]{2,8}(,[A-Za-z0-9_-]+)*$/)).optional(),
        /** Sent after a press is stored, when the device latches presses. */
        latchReset: z
          .string()
          .regex(/^[A-Z]{2,8}(,[A-Za-z0-9_-]+)*$/)
          .optional(),
      })
      .strict()
      // The release is what ends a reset latch: without one, a press after a reset could not be told from a
      // repeat of the last one still on the wire.
      .refine(
        (line) => line.latchReset === undefined || Object.values(line.events).some((e) => e.kind === 'input' && e.input === 'button' && !e.active),
        { path: ['latchReset'], message: 'a latching column needs an event for its button\'s release (kind "input", input "button", active false)' },
      ),
  })
  .strict();

export const deviceProfileSchema = z.discriminatedUnion('protocol', [modbusProfileSchema, lineProfileSchema]);
export type DeviceProfile = z.infer<typeof deviceProfileSchema>;
export type ModbusProfile = z.infer<typeof modbusProfileSchema>;
export type LineProfile = z.infer<typeof lineProfileSchema>;
