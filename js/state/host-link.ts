/**
 * What a host (the JupyterLab extension, through the page registry) sees of one view: its
 * summary, announced when it changes; its commands, also on Alt + key inside the view; and
 * whether it was the view last used.
 */
import type { Traits } from "../model/traits";
import { actionForKey, notify, registry, type ViewAction, type ViewSummary } from "../registry";
import { markUsed } from "../sidepanel/dock";
import { runAction } from "./actions";
import type { KernelSession } from "./session";

export interface HostLinkParts {
  /** The view's root: its id is the view's key in the registry. */
  readonly root: HTMLElement;
  readonly session: KernelSession;
  traits(): Traits;
  /** The side panel's prompt box. */
  promptBox(): HTMLTextAreaElement;
  /** Switch the token colours between query and key mode. */
  toggleMode(): void;
}

export class HostLink {
  /** The summary a host last saw (a host is told when it changes). */
  private summaryKey = "";

  constructor(private readonly parts: HostLinkParts) {
    const { root } = parts;
    root.addEventListener("keydown", (e) => {
      const action = e.altKey && !e.ctrlKey && !e.metaKey ? actionForKey(e.code, e.shiftKey) : null;
      if (action !== null && this.act(action)) {
        e.preventDefault();
        e.stopPropagation();
      }
    });
    root.addEventListener("focusin", () => markUsed(root.id));
    root.addEventListener("pointerdown", () => markUsed(root.id));
  }

  /** What a host lists for this view. */
  summary(): ViewSummary {
    const t = this.parts.traits();
    return { modelName: t.modelName || "precomputed attention", prompt: t.prompt, tokens: t.tokens.length, layer: t.layer, head: t.head };
  }

  /** Tell the hosts when the summary changed (once the view is in the registry). */
  announce(): void {
    const summary = JSON.stringify(this.summary());
    if (summary !== this.summaryKey) {
      this.summaryKey = summary;
      const r = registry();
      if (r.views.has(this.parts.root.id)) notify(r);
    }
  }

  /** A host's command; false when it cannot be done. */
  act(action: ViewAction): boolean {
    const { layer, head, nLayers, nHeads } = this.parts.traits();
    const box = this.parts.promptBox();
    return runAction(action, {
      layer,
      head,
      nLayers,
      nHeads,
      select: (l, h) => this.parts.session.select(l, h),
      toggleMode: () => this.parts.toggleMode(),
      focusPrompt: () => {
        box.focus();
        return document.activeElement === box;
      },
    });
  }
}
