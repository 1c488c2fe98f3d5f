/** The score picker: colour the atlas by a head score and list the best heads. */
import type { HeadRef } from "../renderers/atlas";
import { button, h } from "../renderers/dom";
import { Legend } from "../renderers/legend";
import { scoreLabel, topHeads, type ScoreTable } from "../model/scores";
import { ActionError } from "./status";

export const TOP_HEADS = 5;
/** The picker's value for "no score: thumbnails show maximum attention". */
export const NO_SCORE = "";

export interface ScoreEvents {
  pick(name: string): void;
  select(ref: HeadRef): void;
  /** Run the induction probe (random tokens repeated once) in the kernel. */
  probe(): void;
}

export class ScorePanel {
  readonly el: HTMLElement;
  private readonly select: HTMLSelectElement;
  private readonly legend = new Legend("score");
  private readonly list: HTMLOListElement;
  private readonly note: HTMLElement;
  private readonly probeButton: HTMLButtonElement;
  private names: readonly string[] | null = null;
  /** The kernel's error when scoring or the probe failed, under the picker. */
  readonly error = new ActionError();

  constructor(private readonly events: ScoreEvents, idPrefix: string) {
    this.el = h("section", "hs-scores");
    const label = h("label", "hs-section-title", "Colour heads by");
    this.select = h("select", "hs-score-select");
    this.select.id = `${idPrefix}-score`;
    label.htmlFor = this.select.id;
    this.select.addEventListener("change", () => this.events.pick(this.select.value));
    this.list = h("ol", "hs-top-heads");
    this.list.setAttribute("aria-label", "Best heads for the chosen score");
    this.note = h("p", "hs-score-note");
    this.note.setAttribute("role", "status");
    this.probeButton = button("hs-probe", "Induction probe", () => this.events.probe(),
      "Run the induction probe: random tokens repeated once, scored by induction");
    const row = h("div", "hs-score-row");
    row.append(this.select, this.probeButton);
    this.el.append(label, row, this.error.el, this.legend.el, this.note, this.list);
  }

  /** Show `chosen`'s top heads from `table` (null while the kernel computes them). */
  render(
    names: readonly string[],
    table: ScoreTable | null,
    chosen: string,
    lut: Uint8ClampedArray,
    canProbe: boolean,
  ): void {
    this.probeButton.disabled = !canProbe;
    this.setOptions(names, chosen);
    this.select.value = chosen;
    const active = chosen !== NO_SCORE;
    this.legend.el.hidden = !active;
    this.list.replaceChildren();
    if (!active) {
      this.note.textContent = "Thumbnails show each head's strongest attention.";
      return;
    }
    this.legend.paint(lut);
    if (table === null) {
      this.note.textContent = `Scoring every head by ${scoreLabel(chosen)}…`;
      return;
    }
    this.note.textContent = `Top heads by ${scoreLabel(chosen)} on the tokens shown:`;
    for (const { layer, head, value } of topHeads(table, chosen, TOP_HEADS)) {
      const item = h("li", "hs-top-head");
      item.append(
        button("hs-top-head-btn", `L${layer} H${head} · ${value.toFixed(2)}`, () => this.events.select({ layer, head }),
          `Open layer ${layer}, head ${head} (${scoreLabel(chosen)} ${value.toFixed(3)})`),
      );
      this.list.append(item);
    }
  }

  private setOptions(names: readonly string[], chosen: string): void {
    const known = this.names;
    if (known !== null && names.length === known.length && names.every((n, i) => n === known[i])) return;
    this.names = [...names];
    const options = [new Option("max attention", NO_SCORE)];
    for (const name of names) options.push(new Option(scoreLabel(name), name));
    this.select.replaceChildren(...options);
    this.select.value = chosen;
  }
}
