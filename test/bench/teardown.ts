/** Undoes what a benchmark part set up, newest first; one failing step does not skip the others. */
export class Teardown {
  private readonly steps: Array<{ what: string; run: () => unknown }> = [];

  add(what: string, run: () => unknown): void {
    this.steps.push({ what, run });
  }

  /** Every step runs; the failures come back as messages naming the step. */
  async run(): Promise<string[]> {
    const problems: string[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.run();
      } catch (error) {
        problems.push(`clean-up of ${step.what} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return problems;
  }
}
