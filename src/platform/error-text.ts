/**
 * An error as one line for a log field or a fault detail: its message, with its code (an errno or SQLite
 * name, an MQTT reason number) when the message does not say it already.
 */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  if ((typeof code !== 'string' && typeof code !== 'number') || error.message.includes(String(code))) return error.message;
  return `${error.message} (${code})`;
}
