/**
 * The side panel: the head atlas, known heads, scores and the prompt box, always open; the
 * history, ablation and patching as sections that open on demand (closed at first). In a wide
 * widget the panel is as tall as the token and pattern column and scrolls inside.
 */
import { AtlasView, type AtlasEvents } from "../renderers/atlas";
import { h } from "../renderers/dom";
import type { Palette } from "../renderers/palette";
import { AblatePanel, type AblateEvents } from "./ablate";
import { DisplayOptions } from "./display";
import { GenerateControl } from "./generate";
import { HistoryList } from "./history";
import { KnownHeadsPanel } from "./known";
import { PatchPanel, type PatchEvents } from "./patch";
import { PromptBox } from "./prompt";
import { ScorePanel, type ScoreEvents } from "./scores";
import { ValueWeightedOption } from "./value-weighted";
import { ActionError, type ActionOrigin } from "./status";

export interface InterventionEvents {
  readonly ablate: AblateEvents;
  readonly patch: PatchEvents;
}

/** Generation under the prompt box, and the display options. */
export interface ViewEvents {
  generate(count: number | string): void;
  hideBos(on: boolean): void;
  /** The "value-weighted" display option was switched (docs/value-weighted.md). */
  valueWeighted?(on: boolean): void;
}

export class SidePanel {
  readonly el: HTMLElement;
  readonly atlas: AtlasView;
  readonly prompt: PromptBox;
  readonly history: HistoryList;
  readonly scores: ScorePanel;
  readonly known: KnownHeadsPanel;
  readonly ablate: AblatePanel;
  readonly patch: PatchPanel;
  readonly generate: GenerateControl;
  readonly display: DisplayOptions;
  readonly valueWeighted: ValueWeightedOption;
  /** Error lines under the controls whose kernel action failed. */
  private readonly errors: Record<ActionOrigin, ActionError>;

  constructor(
    atlasEvents: AtlasEvents,
    scoreEvents: ScoreEvents,
    onRun: (prompt: string) => void,
    interventions: InterventionEvents,
    idPrefix: string,
    palette: Palette,
    viewEvents: ViewEvents,
  ) {
    this.el = h("aside", "hs-side");
    this.atlas = new AtlasView(atlasEvents, palette);
    this.prompt = new PromptBox(onRun, idPrefix);
    this.history = new HistoryList((prompt) => this.prompt.runText(prompt));
    this.scores = new ScorePanel(scoreEvents, idPrefix);
    this.known = new KnownHeadsPanel((ref) => atlasEvents.select(ref));
    this.ablate = new AblatePanel(interventions.ablate, idPrefix);
    this.patch = new PatchPanel(interventions.patch, idPrefix, palette);
    this.generate = new GenerateControl((count) => viewEvents.generate(count), idPrefix);
    this.display = new DisplayOptions((on) => viewEvents.hideBos(on), idPrefix);
    this.valueWeighted = new ValueWeightedOption((on) => viewEvents.valueWeighted?.(on), idPrefix);
    this.display.el.append(this.valueWeighted.el);
    const atlasSection = h("section", "hs-atlas-section");
    atlasSection.append(h("div", "hs-section-title", "Heads"), this.atlas.el);
    this.el.append(atlasSection, this.display.el, this.known.el, this.scores.el, this.prompt.el, this.generate.el, this.history.el, this.ablate.el, this.patch.el);
    const runError = new ActionError();
    this.prompt.el.append(runError.el);
    this.errors = { run: runError, probe: this.scores.error, scores: this.scores.error, ablate: this.ablate.error, patch: this.patch.error, generate: this.generate.error };
    // an opened section scrolls into the panel's view (the panel scrolls inside a wide widget)
    for (const section of [this.history.el, this.ablate.el, this.patch.el]) {
      section.addEventListener("toggle", () => {
        if (section instanceof HTMLDetailsElement && section.open) this.reveal(section);
      });
    }
  }

  /** Show `text` under the control of `origin` (null or "": no error anywhere). */
  showError(origin: ActionOrigin | null, text: string): void {
    const target = origin === null || text === "" ? null : this.errors[origin];
    for (const error of new Set(Object.values(this.errors))) error.set(error === target ? text : "");
  }

  /** Scroll the panel (not the page) so that as much of `section` as fits is in view. */
  private reveal(section: HTMLElement): void {
    const panel = this.el;
    if (panel.scrollHeight <= panel.clientHeight) return;
    const top = section.getBoundingClientRect().top - panel.getBoundingClientRect().top + panel.scrollTop;
    const bottom = top + section.offsetHeight;
    if (bottom > panel.scrollTop + panel.clientHeight) panel.scrollTop = Math.min(top, bottom - panel.clientHeight);
  }

  dispose(): void {
    this.atlas.dispose();
    this.patch.heatmap.dispose();
  }
}
