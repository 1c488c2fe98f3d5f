/**
 * Docking: a host (the JupyterLab extension, through the page-level registry) can show a view's
 * side panel and status line elsewhere; the view's output then keeps its header, tokens and
 * pattern. This class owns the Dock/Undock button and moves the elements; it holds no state
 * beyond its own view.
 */
import { button, h } from "../renderers/dom";
import { Tooltip } from "../renderers/tooltip";
import { notify, registry, subscribe } from "../registry";

export interface DockParts {
  /** The view's root: its id is the view's key in the registry. */
  readonly root: HTMLElement;
  /** Where the side panel lives while undocked (the status line follows it). */
  readonly body: HTMLElement;
  readonly side: HTMLElement;
  readonly status: HTMLElement;
}

/** Mark the view with root id `id` as the one last used (a host then shows its panel). */
export function markUsed(id: string): void {
  const r = registry();
  const entry = r.views.get(id);
  if (entry === undefined || entry.usedAt === r.clock) return;
  entry.usedAt = ++r.clock;
  notify(r);
}

export class Dock {
  /** The Dock/Undock control: shown only where a host can dock the panel. */
  readonly button: HTMLButtonElement;
  private docked: { wrapper: HTMLElement; tooltip: Tooltip } | null = null;
  private readonly unsubscribe: () => void;

  constructor(private readonly parts: DockParts) {
    this.button = button("hs-dock-toggle", "Undock", () => this.toggle());
    this.button.hidden = true;
    this.unsubscribe = subscribe(registry(), () => this.renderButton());
  }

  /** The tooltip of the docked panel, or null while undocked. */
  get tooltip(): Tooltip | null {
    return this.docked?.tooltip ?? null;
  }

  /** Move the side panel and the status line into `host`; returns the undock function. */
  mount(host: HTMLElement): () => void {
    this.undock();
    const { root, side, status } = this.parts;
    const wrapper = h("div", "headscope hs-dock");
    wrapper.dataset.view = root.id;
    const used = (): void => markUsed(root.id);
    wrapper.addEventListener("focusin", used);
    wrapper.addEventListener("pointerdown", used);
    const tooltip = new Tooltip(wrapper);
    wrapper.append(side, status);
    host.append(wrapper);
    const docked = { wrapper, tooltip };
    this.docked = docked;
    root.classList.add("hs-docked");
    this.renderButton();
    return () => {
      if (this.docked === docked) this.undock();
    };
  }

  undock(): void {
    const docked = this.docked;
    if (docked === null) return;
    this.docked = null;
    docked.tooltip.hide();
    this.parts.body.append(this.parts.side);
    this.parts.body.after(this.parts.status);
    docked.wrapper.remove();
    this.parts.root.classList.remove("hs-docked");
    this.renderButton();
  }

  renderButton(): void {
    const r = registry();
    const entry = r.views.get(this.parts.root.id);
    this.button.hidden = r.docks <= 0 || entry === undefined;
    const docked = this.docked !== null;
    this.button.textContent = docked ? "Undock" : "Dock";
    this.button.title = docked ? "Show the side panel in this output" : "Show the side panel in the side bar";
    this.button.setAttribute("aria-pressed", String(docked));
  }

  dispose(): void {
    this.unsubscribe();
    this.undock();
  }

  private toggle(): void {
    const r = registry();
    const entry = r.views.get(this.parts.root.id);
    if (entry === undefined) return;
    entry.docked = this.docked === null;
    entry.usedAt = ++r.clock;
    if (!entry.docked) this.undock();
    notify(r);
    if (entry.docked) r.reveal?.();
    this.renderButton();
  }
}
