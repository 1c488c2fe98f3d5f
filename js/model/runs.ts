/**
 * One view's prompt requests. A prompt submitted while this view's earlier prompt still runs
 * waits here; a newer one replaces it, and the replaced prompt is sent along (`superseded`) so
 * the kernel puts it into the history. Nothing is dropped: every prompt is run or remembered.
 */

export interface RunRequest {
  type: "run";
  prompt: string;
  request_id: string;
  superseded: string[];
}

export class RunQueue {
  private next = 1;
  private inFlight: string | null = null;
  private queued: string | null = null;
  private superseded: string[] = [];

  constructor(
    private readonly prefix: string,
    /** Sends a request; false when it could not be sent (the kernel is gone). */
    private readonly send: (request: RunRequest) => boolean,
  ) {}

  /** The prompt waiting for this view's running prompt, or null. */
  get waiting(): string | null {
    return this.queued;
  }

  /** True while a prompt of this view is with the kernel. */
  get busy(): boolean {
    return this.inFlight !== null;
  }

  submit(prompt: string): void {
    if (this.inFlight !== null) {
      if (this.queued !== null) this.superseded.push(this.queued);
      this.queued = prompt;
      return;
    }
    this.dispatch(prompt);
  }

  /** A `run_done` (or any other) message from the kernel; true if it concerned this queue. */
  receive(content: unknown): boolean {
    if (typeof content !== "object" || content === null) return false;
    const m = content as Record<string, unknown>;
    if (m.type !== "run_done" || m.request_id !== this.inFlight || this.inFlight === null) return false;
    this.inFlight = null;
    const next = this.queued;
    this.queued = null;
    if (next !== null) this.dispatch(next);
    return true;
  }

  /** Forget everything in flight (the kernel is gone); the queued prompt is returned. */
  reset(): string | null {
    const left = this.queued;
    this.inFlight = this.queued = null;
    this.superseded = [];
    return left;
  }

  private dispatch(prompt: string): void {
    const request: RunRequest = {
      type: "run",
      prompt,
      request_id: `${this.prefix}-run-${this.next++}`,
      superseded: this.superseded,
    };
    this.superseded = [];
    this.inFlight = request.request_id;
    if (!this.send(request)) this.inFlight = null;
  }
}
