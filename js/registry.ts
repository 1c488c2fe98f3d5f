/**
 * The page-level registry of live headscope views, shared by every widget bundle on the page
 * and by the JupyterLab extension (src/). anywidget loads each model's ESM as a module of its
 * own, so module-level variables are per widget: the registry lives on `globalThis` under a
 * versioned key, and this module holds no state of its own. Each view publishes its model, its
 * element and functions from its own bundle (mount the side panel elsewhere, run a command), so
 * a host never needs the widget's code and the panel always matches the widget's version.
 */

/** Change the suffix whenever the shape below changes incompatibly. */
export const REGISTRY_KEY = "__headscope_registry_v1";

/** What a host shows in its list of widgets. */
export interface ViewSummary {
  readonly modelName: string;
  readonly prompt: string;
  readonly tokens: number;
  readonly layer: number;
  readonly head: number;
}

/** Actions a host can ask of a view (the extension's commands). */
export type ViewAction = "next-head" | "previous-head" | "next-layer" | "previous-layer" | "toggle-mode" | "focus-prompt";

/** The keys (with Alt) of each action, by `KeyboardEvent.code`; the Lab extension binds the same. */
export const ACTION_KEYS: Readonly<Record<ViewAction, string>> = {
  "next-head": "ArrowRight",
  "previous-head": "ArrowLeft",
  "next-layer": "ArrowDown",
  "previous-layer": "ArrowUp",
  "toggle-mode": "KeyM",
  "focus-prompt": "KeyP",
};

/** The action of Alt + the key `code` (no Shift), or null. */
export function actionForKey(code: string, shift: boolean): ViewAction | null {
  if (shift) return null;
  for (const [action, key] of Object.entries(ACTION_KEYS)) if (key === code) return action as ViewAction;
  return null;
}

export interface ViewEntry {
  readonly id: string;
  /** The anywidget model (the widget's synced state). */
  readonly model: unknown;
  /** The view's root element, in the page (a cell output, a host page). */
  readonly element: HTMLElement;
  /** Move the view's side panel into `host`; the returned function puts it back. */
  mountSidePanel(host: HTMLElement): () => void;
  summary(): ViewSummary;
  /** Run `action` on this view; false when it cannot (no such head, nothing loaded). */
  act(action: ViewAction): boolean;
  /** The user wants this view's panel shown by a host (docked), or in its output. */
  docked: boolean;
  /** Larger is more recent: the view last focused, used or created is the current one. */
  usedAt: number;
}

export interface Registry {
  readonly version: 1;
  /** Fires "change" whenever a view comes or goes, is used, or its summary or dock state changes. */
  readonly events: EventTarget;
  readonly views: Map<string, ViewEntry>;
  /** How many hosts can show a side panel (the Lab extension sets this; 0 elsewhere). */
  docks: number;
  /** Brings a host's panel into view (set by the host; a view's Dock button calls it). */
  reveal: (() => void) | null;
  clock: number;
}

type Global = typeof globalThis & { [REGISTRY_KEY]?: Registry };

/** The page's registry, created on first use. */
export function registry(scope: object = globalThis): Registry {
  const g = scope as Global;
  let r = g[REGISTRY_KEY];
  if (r === undefined) {
    r = { version: 1, events: new EventTarget(), views: new Map(), docks: 0, reveal: null, clock: 0 };
    Object.defineProperty(g, REGISTRY_KEY, { value: r, configurable: true, enumerable: false, writable: false });
  }
  return r;
}

/** Tell every subscriber that something changed. */
export function notify(r: Registry): void {
  r.events.dispatchEvent(new Event("change"));
}

/** Publish a view; the returned function withdraws it. */
export function register(r: Registry, entry: Omit<ViewEntry, "usedAt">): () => void {
  const full: ViewEntry = Object.assign(entry, { usedAt: ++r.clock });
  r.views.set(full.id, full);
  notify(r);
  return () => {
    if (r.views.get(full.id) === full) {
      r.views.delete(full.id);
      notify(r);
    }
  };
}

/** Mark a view as the one last used. */
export function touch(r: Registry, id: string): void {
  const entry = r.views.get(id);
  if (entry === undefined || entry.usedAt === r.clock) return;
  entry.usedAt = ++r.clock;
  notify(r);
}

/** Subscribe to changes; the returned function unsubscribes. */
export function subscribe(r: Registry, listener: () => void): () => void {
  r.events.addEventListener("change", listener);
  return () => r.events.removeEventListener("change", listener);
}

/** The most recently used of `entries`, or null. */
export function mostRecent(entries: readonly ViewEntry[]): ViewEntry | null {
  let best: ViewEntry | null = null;
  for (const e of entries) if (best === null || e.usedAt > best.usedAt) best = e;
  return best;
}
