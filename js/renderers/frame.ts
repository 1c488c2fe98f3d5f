/**
 * The view's frame: its root element, the header (model, layer and head, tokens, geometry), the
 * buttons that choose what colours the tokens, and where every part of the view is placed.
 */
import type { Traits } from "../model/traits";
import type { Mode } from "../state/view-state";
import { button, h } from "./dom";

/** What colours the tokens: attention (by the mode) or the ablation's loss change. */
export type TokenColour = "attention" | "loss";

/** The parts the frame places, built by the view. */
export interface FrameParts {
  readonly tokens: HTMLElement;
  readonly effect: HTMLElement;
  readonly pattern: HTMLElement;
  readonly side: HTMLElement;
  readonly status: HTMLElement;
  readonly tooltip: HTMLElement;
}

export class Frame {
  readonly root: HTMLDivElement;
  readonly body: HTMLElement;
  private readonly header: HTMLElement;
  private readonly modeButtons: Record<Mode, HTMLButtonElement>;
  private readonly lossButton: HTMLButtonElement;

  /** `colourBy` gets the button pressed: a mode (attention), or null for the loss change. */
  constructor(id: string, colourBy: (colour: TokenColour, mode: Mode | null) => void) {
    this.root = h("div", "headscope");
    this.root.id = id;
    // Keys pressed inside the widget are ours. Jupyter's command-mode shortcuts (Notebook 7 runs
    // them in the capture phase) would swallow arrow keys, Escape and Enter; Lumino skips an
    // element marked with this attribute, and its selectors match the focused element itself.
    this.root.setAttribute("data-lm-suppress-shortcuts", "true");
    this.root.addEventListener("focusin", (e) => {
      if (e.target instanceof HTMLElement) e.target.setAttribute("data-lm-suppress-shortcuts", "true");
    });
    this.header = h("header", "hs-header");
    this.modeButtons = {
      query: button("hs-mode-query", "Attends to", () => colourBy("attention", "query")),
      key: button("hs-mode-key", "Attended by", () => colourBy("attention", "key")),
    };
    this.lossButton = button("hs-mode-loss", "Loss change", () => colourBy("loss", null),
      "Colour tokens by the ablation's loss change (ablated minus clean)");
    this.body = h("div", "hs-body");
  }

  /** Place the parts: the token bar, tokens, effect and pattern beside the side panel. */
  layout(parts: FrameParts): void {
    const modes = h("div", "hs-mode");
    modes.setAttribute("role", "group");
    modes.setAttribute("aria-label", "Colour tokens by");
    modes.append(this.modeButtons.query, this.modeButtons.key, this.lossButton);
    const tokenBar = h("div", "hs-bar");
    tokenBar.append(h("div", "hs-section-title", "Tokens"), modes);
    const main = h("div", "hs-main");
    main.append(tokenBar, parts.tokens, parts.effect, parts.pattern);
    this.body.append(main, parts.side);
    this.root.append(this.header, this.body, parts.status, parts.tooltip);
  }

  /** The header's chips, then the Dock/Undock button. */
  renderHeader(t: Traits, dockButton: HTMLElement): void {
    const parts = [
      ["hs-model", t.modelName || "precomputed attention"],
      ["hs-head-label", `layer ${t.layer} · head ${t.head}`],
      ["hs-seq", `${t.tokens.length} tokens`],
      ["hs-geometry", `${t.nLayers}×${t.nHeads} heads`],
    ];
    this.header.replaceChildren(
      h("span", "hs-title", "headscope"),
      ...parts.map(([cls, text]) => h("span", `hs-chip ${cls}`, text)),
      dockButton,
    );
  }

  /** Which colour button is pressed; the loss button works only while there is an ablation. */
  renderModes(mode: Mode, loss: boolean, ablated: boolean): void {
    for (const m of ["query", "key"] as const) {
      this.modeButtons[m].setAttribute("aria-pressed", String(!loss && mode === m));
    }
    this.lossButton.setAttribute("aria-pressed", String(loss));
    this.lossButton.disabled = !ablated;
    this.root.dataset.mode = loss ? "loss" : mode;
  }
}
