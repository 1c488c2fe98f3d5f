/** The activation-patching section: clean and corrupted prompts, a metric, the heatmap. */
import type { HeadRef } from "../renderers/atlas";
import { button, fold, h } from "../renderers/dom";
import { HeatmapView } from "../renderers/heatmap";
import type { Palette } from "../renderers/palette";
import { Legend } from "../renderers/legend";
import { topPatched, type Patching } from "../model/interventions";
import { enterSubmits } from "./ablate";
import { ActionError } from "./status";

export type PatchMetric = "logit_diff" | "loss";

export interface PatchRequest {
  readonly clean: string;
  readonly corrupted: string;
  readonly metric: PatchMetric;
  readonly answer: [string, string] | null;
}

export interface PatchEvents {
  patch(request: PatchRequest): void;
  select(ref: HeadRef): void;
  hover(ref: HeadRef | null, value: number, clientX: number, clientY: number): void;
}

export interface PatchInput {
  readonly result: Patching | null;
  readonly patchId: number;
  readonly clean: string;
  readonly corrupted: string;
  readonly prompt: string;
  readonly summary: string;
  readonly selected: HeadRef;
  readonly canRun: boolean;
  readonly running: boolean;
  /** Fraction of heads done while patching runs, else -1. */
  readonly progress: number;
  readonly lut: Uint8ClampedArray;
}

const TOP = 5;

export class PatchPanel {
  readonly el: HTMLElement;
  readonly heatmap: HeatmapView;
  private readonly clean: HTMLTextAreaElement;
  private readonly corrupted: HTMLTextAreaElement;
  private readonly metric: HTMLSelectElement;
  private readonly answers: HTMLElement;
  private readonly correct: HTMLInputElement;
  private readonly wrong: HTMLInputElement;
  private readonly runButton: HTMLButtonElement;
  private readonly progress: HTMLProgressElement;
  private readonly result: HTMLElement;
  private readonly legend = new Legend("patching effect", "−1", "1");
  private readonly summary: HTMLElement;
  private readonly list: HTMLOListElement;
  private shownPatchId = -1;
  /** The clean box's text when it was last filled or submitted: anything else was typed. */
  private cleanSynced = "";
  /** The kernel's error when patching failed, under the button. */
  readonly error = new ActionError();

  constructor(
    private readonly events: PatchEvents,
    idPrefix: string,
    palette: Palette,
  ) {
    this.el = fold("hs-patch", "Activation patching", false);
    this.clean = textArea(`${idPrefix}-patch-clean`, "hs-patch-clean");
    this.corrupted = textArea(`${idPrefix}-patch-corrupted`, "hs-patch-corrupted");
    this.metric = h("select", "hs-patch-metric hs-select");
    this.metric.id = `${idPrefix}-patch-metric`;
    this.metric.append(new Option("logit difference of two answers", "logit_diff"), new Option("loss on the clean tokens", "loss"));
    this.metric.addEventListener("change", () => {
      this.answers.hidden = this.metric.value !== "logit_diff";
    });
    this.correct = textInput(`${idPrefix}-patch-correct`, "hs-patch-correct");
    this.wrong = textInput(`${idPrefix}-patch-wrong`, "hs-patch-wrong");
    this.answers = h("div", "hs-patch-answers");
    this.answers.append(field("Correct answer token", this.correct), field("Wrong answer token", this.wrong));
    this.runButton = button("hs-patch-run hs-primary", "Patch every head", () => this.submit());
    this.progress = h("progress", "hs-patch-progress");
    this.progress.max = 1;
    this.progress.hidden = true;
    this.progress.setAttribute("aria-label", "Patching progress");
    for (const el of [this.clean, this.corrupted, this.correct, this.wrong]) enterSubmits(el, () => this.submit());
    this.heatmap = new HeatmapView({
      select: (ref) => this.events.select(ref),
      hover: (ref, x, y) => this.events.hover(ref, ref === null ? NaN : this.heatmap.valueAt(ref), x, y),
    }, palette);
    this.summary = h("p", "hs-patch-summary hs-hint");
    this.summary.setAttribute("role", "status");
    this.list = h("ol", "hs-top-heads hs-patch-top");
    this.list.setAttribute("aria-label", "Heads with the largest patching effect");
    this.result = h("div", "hs-patch-result");
    this.result.append(this.heatmap.el, this.legend.el, this.summary, this.list);
    const row = h("div", "hs-button-row");
    row.append(this.runButton, this.progress);
    this.el.append(
      field("Clean prompt", this.clean),
      field("Corrupted prompt (same number of tokens)", this.corrupted),
      field("Metric", this.metric),
      this.answers,
      row,
      this.error.el,
      this.result,
    );
  }

  update(input: PatchInput): void {
    if (input.patchId !== this.shownPatchId) {
      this.shownPatchId = input.patchId;
      if (input.clean !== "") this.fillClean(input.clean);
      if (input.corrupted !== "") this.corrupted.value = input.corrupted;
    }
    // the clean prompt follows the widget's prompt until the user types one of their own
    if (input.prompt !== "" && this.clean.value === this.cleanSynced) this.fillClean(input.prompt);
    const patching = input.running && input.progress >= 0;
    this.progress.hidden = !patching;
    if (patching) this.progress.value = input.progress;
    const disabled = !input.canRun;
    for (const el of [this.clean, this.corrupted, this.correct, this.wrong, this.metric]) el.disabled = disabled;
    this.runButton.disabled = disabled || input.running;
    this.runButton.textContent = patching ? `Patching… ${Math.round(input.progress * 100)} %` : "Patch every head";
    const result = input.result;
    this.result.hidden = result === null;
    if (result === null) return;
    this.legend.paint(input.lut);
    this.heatmap.setData(result.effect, result.nLayers, result.nHeads, input.lut);
    this.heatmap.setSelected(input.selected);
    this.summary.textContent = input.summary;
    this.list.replaceChildren(
      ...topPatched(result, TOP).map(({ layer, head, value }) => {
        const item = h("li", "hs-top-head");
        item.append(
          button("hs-top-head-btn hs-patch-head", `L${layer} H${head} · ${value.toFixed(2)}`, () => this.events.select({ layer, head }),
            `Open layer ${layer}, head ${head} (patching effect ${value.toFixed(3)})`),
        );
        return item;
      }),
    );
  }

  private fillClean(text: string): void {
    this.clean.value = text;
    this.cleanSynced = text;
  }

  private submit(): void {
    if (this.runButton.disabled) return;
    this.cleanSynced = this.clean.value;
    const metric = this.metric.value as PatchMetric;
    this.events.patch({
      clean: this.clean.value,
      corrupted: this.corrupted.value,
      metric,
      answer: metric === "logit_diff" ? [this.correct.value, this.wrong.value] : null,
    });
  }
}

function textArea(id: string, className: string): HTMLTextAreaElement {
  const el = h("textarea", `${className} hs-text-input`);
  el.id = id;
  el.rows = 2;
  el.spellcheck = false;
  return el;
}

function textInput(id: string, className: string): HTMLInputElement {
  const el = h("input", `${className} hs-text-input`);
  el.type = "text";
  el.id = id;
  el.spellcheck = false;
  return el;
}

function field(label: string, control: HTMLElement): HTMLElement {
  const wrap = h("div", "hs-field");
  const l = h("label", "hs-field-label", label);
  l.htmlFor = control.id;
  wrap.append(l, control);
  return wrap;
}
