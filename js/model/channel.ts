/**
 * The link between one model and its kernel: sends that never throw, custom messages in, and
 * whether the kernel still answers. A kernel restart or a closed comm turns the channel to
 * "closed" (ipywidgets sets `comm_live` to false and triggers `comm_live_update`; a send on a
 * dead comm throws "Cannot send"). Nothing is sent on a closed channel.
 */
import type { AnyModel } from "./anywidget";

export type Connection = "live" | "closed";
type MessageListener = (content: unknown, buffers: readonly unknown[]) => void;

/** A random token for ids that must be unique across views, windows and reloads. */
export function randomToken(): string {
  const bytes = new Uint8Array(6);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Channel {
  private connection: Connection = "live";
  private readonly messageListeners = new Set<MessageListener>();
  private readonly connectionListeners = new Set<() => void>();
  /** The host's own model object (Backbone's `set({})` returns it), for `comm_live`. */
  private readonly underlying: unknown;

  constructor(private readonly model: AnyModel) {
    this.underlying = (model.set as unknown as (attrs: object) => unknown)({});
    model.on("msg:custom", this.onMessage);
    model.on("comm_live_update", this.onLiveUpdate);
    model.on("comm:close", this.onClosed);
  }

  get live(): boolean {
    return this.connection === "live";
  }

  /** Send a custom message; false (and the channel closed) when the host refuses it. */
  send(content: object): boolean {
    if (!this.live) return false;
    try {
      this.model.send(content);
      return true;
    } catch {
      this.close();
      return false;
    }
  }

  /** Set traits and sync them to the kernel in one update; false when that is impossible. */
  save(changes: Record<string, unknown>): boolean {
    if (!this.live) return false;
    try {
      for (const [name, value] of Object.entries(changes)) this.model.set(name, value);
      this.model.save_changes();
      return true;
    } catch {
      this.close();
      return false;
    }
  }

  onCustom(listener: MessageListener): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  onConnection(listener: () => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  dispose(): void {
    this.model.off("msg:custom", this.onMessage);
    this.model.off("comm_live_update", this.onLiveUpdate);
    this.model.off("comm:close", this.onClosed);
    this.messageListeners.clear();
    this.connectionListeners.clear();
  }

  private close(): void {
    if (this.connection === "closed") return;
    this.connection = "closed";
    for (const listener of [...this.connectionListeners]) listener();
  }

  private readonly onMessage = (content: unknown, buffers: readonly unknown[] = []): void => {
    for (const listener of [...this.messageListeners]) listener(content, buffers);
  };

  private readonly onLiveUpdate = (): void => {
    const live = (this.underlying as { comm_live?: unknown } | null)?.comm_live;
    if (live === true) return;
    this.close();
  };

  private readonly onClosed = (): void => this.close();
}
