/**
 * The anywidget boundary: the only place where the host's untyped model surface is named.
 * Everything else in the front end goes through {@link Traits} and the typed helpers here.
 */

/** Callback signature of `model.on("msg:custom", …)`: JSON content plus binary buffers. */
export type CustomMessageHandler = (content: unknown, buffers: readonly unknown[]) => void;

/** The subset of anywidget's `AnyModel` that headscope uses. */
export interface AnyModel {
  get(name: string): any;
  set(name: string, value: any): unknown;
  save_changes(): void;
  send(content: any, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
  on(name: string, callback: (...args: any[]) => void): void;
  off(name?: string | null, callback?: ((...args: any[]) => void) | null): void;
}

export interface InitializeProps {
  model: AnyModel;
}

export interface RenderProps {
  model: AnyModel;
  el: HTMLElement;
}
