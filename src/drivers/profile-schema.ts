import { z } from 'zod';

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

export const indicatorStates = ['off', 'sent', 'received', 'not-received'] as const;
export const indicatorStateSchema = z.enum(indicatorStates);
export type IndicatorState = z.infer<typeof indicatorStateSchema>;

const registerTables: readonly ModbusTable[] = ['holding-registers', 'input-registers'];

/** An input to read: a bit table entry, or one bit of a register. */
const modbusInputSchema = z
  .object({
    table: modbusTableSchema,
    address,
    bit: z.number().int().min(0).max(15).optional(),
    /** Input reads 0 when active (e.g. a normally-closed tamper loop). */
    activeLow: z.boolean().default(false),
    /**
     * The device holds the input active after a press until the controller resets it, so a press
     * shorter than the poll interval is never missed. Without a latch such a press can be.
     */
    latch: z
      .object({ reset: z.array(writeSchema).min(1) })
      .strict()
      .optional(),
  })
  .strict()
  .refine((p) => p.bit === undefined || registerTables.includes(p.table), {
    message: 'bit is only for register tables',
    path: ['bit'],
  });
export type ModbusInput = z.infer<typeof modbusInputSchema>;

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
    /** Blocks read on every poll; every input must lie inside one of them. */
    poll: z.array(pollBlockSchema).min(1),
    inputs: z.partialRecord(inputNameSchema, modbusInputSchema).default({}),
    /** What to write to show each state to the villager. */
    indicator: z.partialRecord(indicatorStateSchema, z.array(writeSchema)).optional(),
    relays: z
      .object({ table: z.literal('coils'), address, count: z.number().int().min(1).max(64) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((profile, ctx) => {
    for (const [name, input] of Object.entries(profile.inputs)) {
      if (input === undefined) continue;
      const covered = profile.poll.some(
        (b) => b.table === input.table && input.address >= b.address && input.address < b.address + b.count,
      );
      if (!covered)
        ctx.addIssue({
          code: 'custom',
          path: ['inputs', name, 'address'],
          message: `${input.table} ${input.address} is not inside any poll block`,
        });
    }
  });

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
        latchReset: z.string().regex(/^[A-Z]{2,8}(,[A-Za-z0-9_-]+)*$/).optional(),
      })
      .strict(),
  })
  .strict();

export const deviceProfileSchema = z.discriminatedUnion('protocol', [modbusProfileSchema, lineProfileSchema]);
export type DeviceProfile = z.infer<typeof deviceProfileSchema>;
export type ModbusProfile = z.infer<typeof modbusProfileSchema>;
export type LineProfile = z.infer<typeof lineProfileSchema>;
