/**
 * Head loading: a per-model {@link HeadHub} (request ids, decoded-head LRU, fan-out of answers)
 * and a per-view {@link HeadLoader} that shows only the answer to its latest request.
 */
import { decodeHeadMessage, type HeadMessage, type HeadPattern } from "./head";
import { LruCache } from "./lru";

export const HEAD_CACHE_SIZE = 16;

export interface RequestHead {
  type: "request_head";
  request_id: number;
  layer: number;
  head: number;
}

export function headKey(runId: number, layer: number, head: number): string {
  return `${runId}/${layer}/${head}`;
}

type Listener = (message: HeadMessage) => void;

export class HeadHub {
  private nextRequestId = 1;
  private readonly cache = new LruCache<string, HeadPattern>(HEAD_CACHE_SIZE);
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly send: (message: RequestHead) => void,
    /** The model's current `run_id`: answers of older runs never enter the cache. */
    readonly currentRunId: () => number,
  ) {}

  cached(runId: number, layer: number, head: number): HeadPattern | undefined {
    return this.cache.get(headKey(runId, layer, head));
  }

  /** Send a `request_head` with a fresh id and return that id. */
  request(layer: number, head: number): number {
    const requestId = this.nextRequestId++;
    this.send({ type: "request_head", request_id: requestId, layer, head });
    return requestId;
  }

  /** Handle one `msg:custom` from the kernel. */
  receive(content: unknown, buffers: readonly unknown[]): void {
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

/** One view's head requests: answers to superseded requests or older runs are dropped. */
export class HeadLoader {
  private latestRequest = -1;
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
      this.latestRequest = -1;
      this.callbacks.onHead(hit);
      return true;
    }
    this.latestRequest = this.hub.request(layer, head);
    return false;
  }

  get pending(): boolean {
    return this.latestRequest !== -1;
  }

  dispose(): void {
    this.unsubscribe();
  }

  private onMessage(message: HeadMessage): void {
    if (message.requestId !== this.latestRequest) return;
    if (message.type === "head_error") {
      this.latestRequest = -1;
      this.callbacks.onError(message.message);
      return;
    }
    if (message.pattern.runId !== this.hub.currentRunId()) return;
    this.latestRequest = -1;
    this.callbacks.onHead(message.pattern);
  }
}
