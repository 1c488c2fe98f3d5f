/** What a host's command (registry.ts: next head, previous layer…) does to one view. */
import type { ViewAction } from "../registry";

/** The view as a command sees it: its selection and geometry, and what it can be asked to do. */
export interface ActionTarget {
  readonly layer: number;
  readonly head: number;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Select a head (through the kernel session); false when that cannot be done now. */
  select(layer: number, head: number): boolean;
  toggleMode(): void;
  /** Focus the prompt box; whether it has the focus now. */
  focusPrompt(): boolean;
}

/** Run `action` on `t`; false when it cannot be done. Head and layer moves wrap around. */
export function runAction(action: ViewAction, t: ActionTarget): boolean {
  const wrap = (i: number, n: number): number => (n <= 0 ? 0 : (i + n) % n);
  switch (action) {
    case "next-head":
    case "previous-head":
      if (t.nHeads <= 0) return false;
      return t.select(t.layer, wrap(t.head + (action === "next-head" ? 1 : -1), t.nHeads));
    case "next-layer":
    case "previous-layer":
      if (t.nLayers <= 0) return false;
      return t.select(wrap(t.layer + (action === "next-layer" ? 1 : -1), t.nLayers), t.head);
    case "toggle-mode":
      t.toggleMode();
      return true;
    case "focus-prompt":
      return t.focusPrompt();
  }
}
