/** Polls `condition` until it holds; fails the test with a clear error after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, timeoutMs = 5000, pollMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
