/**
 * Head loading: a per-model {@link HeadHub} (request ids, decoded-head LRU, fan-out of answers)
 * and a per-view {@link HeadLoader} that shows only the answer to its own latest request.
 *
 * Request ids carry a random prefix, so they are unique across views, windows and reloads on
 * one kernel (answers reach every window). A request made for the selected head says so
 * (`selected: true`); the kernel then answers `head_superseded` instead of sending the head if
 * its selection has already moved on (`w.layer, w.head = 9, 4` from Python: one head is sent).
 */
import { decodeHeadMessage, headLacksBuffers, type HeadMessage, type HeadPattern, type RequestId } from "./head";
import { LruCache } from "./lru";
import type { Transport } from "./transport";

/** Requests remembered to be asked again once under the text transport. */
const PENDING_LIMIT = 64;

export const HEAD_CACHE_SIZE = 16;

export interface RequestHead {
  type: "request_head";
  request_id: string;
  layer: number;
  head: number;
  /** true: only if the kernel's selection is still this head (else `head_superseded`). */
  selected: boolean;
}

export function headKey(runId: number, layer: number, head: number): string {
  return `${runId}/${layer}/${head}`;
}

type Listener = (message: HeadMessage) => void;

export class HeadHub {
  private nextRequestId = 1;
  private readonly cache = new LruCache<string, HeadPattern>(HEAD_CACHE_SIZE);
  private readonly listeners = new Set<Listener>();
  private readonly pending = new Map<string, RequestHead>();

  constructor(
    private readonly send: (message: RequestHead) => void,
    /** The model's current `run_id`: answers of older runs never enter the cache. */
    readonly currentRunId: () => number,
    /** Makes request ids unique beyond this hub (a random token per hub). */
    private readonly prefix: string = "",
    /** Switches to the text transport when a reply lost its buffers (./transport). */
    private readonly transport: Transport | null = null,
  ) {}

  cached(runId: number, layer: number, head: number): HeadPattern | undefined {
    return this.cache.get(headKey(runId, layer, head));
  }

  /** Send a `request_head` with a fresh id and return that id. */
  request(layer: number, head: number, selected = true): string {
    const requestId = `${this.prefix}${this.prefix ? "-" : ""}${this.nextRequestId++}`;
    const message: RequestHead = { type: "request_head", request_id: requestId, layer, head, selected };
    if (this.transport !== null && !this.transport.text) {
      this.pending.set(requestId, message);
      if (this.pending.size > PENDING_LIMIT) this.pending.delete(this.pending.keys().next().value as string);
    }
    this.send(message);
    return requestId;
  }

  /** Handle one `msg:custom` from the kernel. */
  receive(content: unknown, buffers: readonly unknown[]): void {
    const id = (content as { request_id?: unknown } | null)?.request_id;
    const asked = typeof id === "string" ? this.pending.get(id) : undefined;
    if (asked !== undefined) this.pending.delete(asked.request_id);
    if (this.transport !== null && !this.transport.text && headLacksBuffers(content, buffers)) {
      // the host dropped the buffers: switch to the text transport, then ask once more
      this.transport.useText("a head reply arrived without its binary buffers");
      if (asked !== undefined) this.send(asked);
      return;
    }
    const message = decodeHeadMessage(content, buffers);
    if (message === null) return;
    if (message.type === "head" && message.pattern.runId === this.currentRunId()) {
      const p = message.pattern;
      this.cache.set(headKey(p.runId, p.layer, p.head), p);
    }
    for (const listener of [...this.listeners]) listener(message);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface LoaderCallbacks {
  onHead(pattern: HeadPattern): void;
  onError(message: string): void;
}

interface Asked {
  id: RequestId;
  runId: number;
  layer: number;
  head: number;
  /** A superseded answer is asked again once, unconditionally (the kernel may not have seen
   * the selection yet: the request overtook the update). */
  retried: boolean;
}

/** One view's head requests: only the answer to its latest request, for that very head and
 * run, is shown; answers to other requests, other views or older runs are dropped. */
export class HeadLoader {
  private asked: Asked | null = null;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly hub: HeadHub,
    private readonly callbacks: LoaderCallbacks,
  ) {
    this.unsubscribe = hub.subscribe((message) => this.onMessage(message));
  }

  /** Show head `(layer, head)` of run `runId`: from the cache now (true), or later (false). */
  load(runId: number, layer: number, head: number): boolean {
    const hit = this.hub.cached(runId, layer, head);
    if (hit !== undefined) {
      this.asked = null;
      this.callbacks.onHead(hit);
      return true;
    }
    this.asked = { id: this.hub.request(layer, head), runId, layer, head, retried: false };
    return false;
  }

  get pending(): boolean {
    return this.asked !== null;
  }

  /** Stop waiting (the kernel is gone): nothing that arrives later is shown. */
  cancel(): void {
    this.asked = null;
  }

  dispose(): void {
    this.unsubscribe();
  }

  private onMessage(message: HeadMessage): void {
    const asked = this.asked;
    if (asked === null || message.requestId === null || message.requestId !== asked.id) return;
    if (message.type === "head_superseded") {
      if (asked.retried) return;
      this.asked = { ...asked, id: this.hub.request(asked.layer, asked.head, false), retried: true };
      return;
    }
    if (message.type === "head_error") {
      this.asked = null;
      this.callbacks.onError(message.message);
      return;
    }
    const p = message.pattern;
    if (p.runId !== this.hub.currentRunId() || p.runId !== asked.runId || p.layer !== asked.layer || p.head !== asked.head) {
      return;
    }
    this.asked = null;
    this.callbacks.onHead(p);
  }
}
