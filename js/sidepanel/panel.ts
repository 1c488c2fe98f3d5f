/** The side panel: the head atlas, the prompt box and the history. */
import { AtlasView, type AtlasEvents } from "../renderers/atlas";
import { h } from "../renderers/dom";
import { HistoryList } from "./history";
import { PromptBox } from "./prompt";
import { ScorePanel, type ScoreEvents } from "./scores";

export class SidePanel {
  readonly el: HTMLElement;
  readonly atlas: AtlasView;
  readonly prompt: PromptBox;
  readonly history: HistoryList;
  readonly scores: ScorePanel;

  constructor(
    atlasEvents: AtlasEvents,
    scoreEvents: ScoreEvents,
    onRun: (prompt: string) => void,
    idPrefix: string,
  ) {
    this.el = h("aside", "hs-side");
    this.atlas = new AtlasView(atlasEvents);
    this.prompt = new PromptBox(onRun, idPrefix);
    this.history = new HistoryList((prompt) => this.prompt.runText(prompt));
    this.scores = new ScorePanel(scoreEvents, idPrefix);
    const atlasSection = h("section", "hs-atlas-section");
    atlasSection.append(h("div", "hs-section-title", "Heads"), this.atlas.el);
    this.el.append(atlasSection, this.scores.el, this.prompt.el, this.history.el);
  }

  dispose(): void {
    this.atlas.dispose();
  }
}
