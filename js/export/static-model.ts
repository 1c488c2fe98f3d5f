/**
 * A widget model without a kernel, for the offline HTML export. It holds the traits the kernel
 * synced, and answers the widget's `request_head` as the kernel does (docs/wire.md: a `head`
 * message with its two buffers), from heads decoded in the page when they are first asked for.
 * A head that is not in the export gets a `head_error` that says so. Everything that needs a
 * kernel (prompts, the probe, ablation, patching) is off: `can_run` is false, and a `run` that
 * arrives anyway is answered as failed.
 */
import type { AnyModel } from "../model/anywidget";
import type { HeadBytes } from "./data";

type Callback = (...args: unknown[]) => void;

/** Where the heads come from: the page's data elements (./boot), or a test's. */
export interface HeadSource {
  /** The run's `seq_len`. */
  readonly seqLen: number;
  /** `"tril"` or `"full"` for an exported head; null for a head not in the export. */
  packing(layer: number, head: number): "tril" | "full" | null;
  /** Decode an exported head. */
  load(layer: number, head: number): Promise<HeadBytes>;
  /** Why `(layer, head)` cannot be shown (it is not exported, or out of range). */
  missing(layer: number, head: number): string;
}

export const NO_KERNEL = "static export: no kernel";

export class StaticModel implements AnyModel {
  private readonly attrs = new Map<string, unknown>();
  private readonly listeners = new Map<string, Set<Callback>>();
  /** Decodes in flight or done and not yet answered (a prefetched head waits here for its
   * request; the widget's own cache keeps heads once they are shown). */
  private readonly decoding = new Map<string, Promise<HeadBytes>>();
  /** Every message the widget sent (for tests and for curiosity). */
  readonly sent: unknown[] = [];

  constructor(
    state: Record<string, unknown>,
    private readonly heads: HeadSource,
  ) {
    for (const [name, value] of Object.entries(state)) this.attrs.set(name, value);
  }

  get(name: string): unknown {
    return this.attrs.get(name);
  }

  /** Backbone's forms: `set(name, value)`; `set({})` changes nothing and returns the model. */
  set(name: string | Record<string, unknown>, value?: unknown): this {
    if (typeof name !== "string") {
      for (const [key, v] of Object.entries(name)) this.change(key, v);
      return this;
    }
    this.change(name, value);
    return this;
  }

  /** There is no kernel to sync with: the traits set are already the state. */
  save_changes(): void {}

  send(content: unknown): void {
    this.sent.push(content);
    if (typeof content !== "object" || content === null) return;
    const message = content as Record<string, unknown>;
    if (message.type === "request_head") {
      void this.answerHead(message);
    } else if (message.type === "run") {
      this.later({ type: "run_done", request_id: message.request_id, ok: false, superseded: false });
    }
  }

  on(name: string, callback: Callback): void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(callback);
  }

  off(name?: string | null, callback?: Callback | null): void {
    if (name == null) this.listeners.clear();
    else if (callback == null) this.listeners.delete(name);
    else this.listeners.get(name)?.delete(callback);
  }

  /** Start decoding a head before the widget asks for it (the first head shown); resolves
   * when that is done (a failure is left for the request to report). */
  prefetch(layer: number, head: number): Promise<void> {
    if (this.heads.packing(layer, head) === null) return Promise.resolve();
    return this.decode(layer, head).then(() => undefined, () => undefined);
  }

  private change(name: string, value: unknown): void {
    if (this.attrs.get(name) === value) return;
    this.attrs.set(name, value);
    this.emit(`change:${name}`, this, value);
  }

  private emit(name: string, ...args: unknown[]): void {
    for (const callback of [...(this.listeners.get(name) ?? [])]) callback(...args);
  }

  /** A custom message from the "kernel", never inside the `send` that asked for it (the
   * widget records a request after sending it), but before the browser's next frame: the head
   * shown first is on the first frame that shows the widget. */
  private later(content: object, buffers: Uint8Array[] = []): void {
    queueMicrotask(() => this.emit("msg:custom", content, buffers));
  }

  private decode(layer: number, head: number): Promise<HeadBytes> {
    const key = `${layer}/${head}`;
    let pending = this.decoding.get(key);
    if (pending === undefined) {
      const started = this.heads.load(layer, head);
      this.decoding.set(key, started);
      started.catch(() => {
        if (this.decoding.get(key) === started) this.decoding.delete(key);
      });
      pending = started;
    }
    return pending;
  }

  private async answerHead(message: Record<string, unknown>): Promise<void> {
    const requestId = message.request_id;
    const { layer, head } = message;
    const packing = typeof layer === "number" && typeof head === "number" ? this.heads.packing(layer, head) : null;
    if (packing === null) {
      this.later({ type: "head_error", request_id: requestId, message: this.heads.missing(Number(layer), Number(head)) });
      return;
    }
    try {
      const bytes = await this.decode(layer as number, head as number);
      this.decoding.delete(`${layer}/${head}`);
      const reply = {
        type: "head",
        request_id: requestId,
        run_id: this.get("run_id"),
        layer,
        head,
        seq_len: this.heads.seqLen,
        packing,
      };
      this.later(reply, [bytes.scales, bytes.values]);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      this.later({ type: "head_error", request_id: requestId, message: `layer ${layer}, head ${head} could not be decoded: ${text}` });
    }
  }
}
