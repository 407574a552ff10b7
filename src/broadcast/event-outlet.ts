/**
 * Hands events to one sink, in order, each on a later microtask. The sink (the durable report recorder,
 * wired by the app) may call back into the producer and finds it in a consistent state, because the
 * producer has finished its own step by then; a sink that throws costs one `onSinkError`, nothing more.
 */
export class EventOutlet<E> {
  private readonly pending: E[] = [];

  constructor(
    private readonly sink: (event: E) => void,
    private readonly onSinkError: (error: unknown, event: E) => void,
  ) {}

  push(event: E): void {
    this.pending.push(event);
    if (this.pending.length === 1) queueMicrotask(() => this.deliver());
  }

  private deliver(): void {
    // Events pushed by the sink itself land in a fresh batch, after the ones taken here.
    for (const event of this.pending.splice(0)) {
      try {
        this.sink(event);
      } catch (error) {
        this.onSinkError(error, event);
      }
    }
  }
}
