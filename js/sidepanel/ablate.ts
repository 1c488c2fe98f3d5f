/** The ablation section: build a set of heads, pick a method, ablate in the kernel, clear. */
import type { HeadRef } from "../renderers/atlas";
import { button, fold, h } from "../renderers/dom";
import { headList, toggleHead } from "../model/interventions";
import { ActionError } from "./status";

/** "mean" averages over the prompt; "reference" over the text in the reference box. */
export type AblateChoice = "zero" | "mean" | "reference";

export interface AblateRequest {
  readonly heads: [number, number][];
  readonly method: "zero" | "mean";
  readonly reference: string | null;
}

export interface AblateEvents {
  ablate(request: AblateRequest): void;
  clear(): void;
}

export interface AblateInput {
  readonly selected: HeadRef;
  /** Heads of the ablation the kernel applied ("" key: none). */
  readonly applied: readonly (readonly [number, number])[];
  readonly appliedLabel: string;
  readonly canRun: boolean;
  readonly running: boolean;
  /** A page exported by `w.save_html`: no kernel (else no model: precomputed attention). */
  readonly staticExport?: boolean;
}

export class AblatePanel {
  readonly el: HTMLElement;
  private readonly toggle: HTMLButtonElement;
  private readonly list: HTMLUListElement;
  private readonly method: HTMLSelectElement;
  private readonly reference: HTMLTextAreaElement;
  private readonly referenceLabel: HTMLLabelElement;
  private readonly runButton: HTMLButtonElement;
  private readonly clearButton: HTMLButtonElement;
  private readonly note: HTMLElement;
  /** The kernel's error when ablating failed, under the buttons. */
  readonly error = new ActionError();
  private heads: [number, number][] = [];
  private appliedKey = "";
  private input: AblateInput | null = null;

  constructor(private readonly events: AblateEvents, idPrefix: string) {
    this.el = fold("hs-ablate", "Ablate heads", false);
    this.toggle = button("hs-ablate-toggle", "Add head", () => this.toggleSelected());
    this.list = h("ul", "hs-ablate-heads");
    this.list.setAttribute("aria-label", "Heads to ablate");
    const methodLabel = h("label", "hs-field-label", "Method");
    this.method = h("select", "hs-ablate-method hs-select");
    this.method.id = `${idPrefix}-ablate-method`;
    methodLabel.htmlFor = this.method.id;
    this.method.append(
      new Option("zero", "zero"),
      new Option("mean over this prompt", "mean"),
      new Option("mean over a reference", "reference"),
    );
    this.method.addEventListener("change", () => this.render());
    this.referenceLabel = h("label", "hs-field-label", "Reference text (the mean is taken over it)");
    this.reference = h("textarea", "hs-ablate-reference hs-text-input");
    this.reference.id = `${idPrefix}-ablate-reference`;
    this.reference.rows = 2;
    this.reference.spellcheck = false;
    this.referenceLabel.htmlFor = this.reference.id;
    enterSubmits(this.reference, () => this.submit());
    this.runButton = button("hs-ablate-run hs-primary", "Ablate", () => this.submit());
    this.clearButton = button("hs-ablate-clear", "Clear", () => this.events.clear(), "Clear the ablation");
    this.note = h("p", "hs-ablate-note hs-hint");
    const row = h("div", "hs-button-row");
    row.append(this.runButton, this.clearButton);
    const methodRow = h("div", "hs-field");
    methodRow.append(methodLabel, this.method);
    this.el.append(
      this.toggle,
      this.list,
      methodRow,
      this.referenceLabel,
      this.reference,
      row,
      this.error.el,
      this.note,
    );
  }

  /** The heads in the set (not yet applied ones included). */
  get chosen(): readonly [number, number][] {
    return this.heads;
  }

  update(input: AblateInput): void {
    this.input = input;
    const key = headList(input.applied);
    if (key !== this.appliedKey) {
      this.appliedKey = key;
      if (input.applied.length > 0) this.heads = input.applied.map(([l, hd]) => [l, hd]);
    }
    this.render();
  }

  private render(): void {
    const input = this.input;
    if (input === null) return;
    const { layer, head } = input.selected;
    const inSet = this.heads.some(([l, hd]) => l === layer && hd === head);
    this.toggle.textContent = inSet ? `Remove L${layer} H${head}` : `Add L${layer} H${head}`;
    this.toggle.title = inSet
      ? `Take layer ${layer}, head ${head} out of the ablation set`
      : `Put the selected head (layer ${layer}, head ${head}) in the ablation set`;
    this.list.replaceChildren(
      ...this.heads.map(([l, hd]) => {
        const item = h("li", "hs-ablate-head");
        item.append(button("hs-ablate-remove", `L${l} H${hd} ×`, () => this.remove(l, hd), `Remove layer ${l}, head ${hd}`));
        return item;
      }),
    );
    const reference = this.method.value === "reference";
    this.referenceLabel.hidden = !reference;
    this.reference.hidden = !reference;
    const disabled = !input.canRun || input.running;
    this.toggle.disabled = !input.canRun;
    this.method.disabled = !input.canRun;
    this.reference.disabled = !input.canRun;
    this.runButton.disabled = disabled || this.heads.length === 0;
    this.clearButton.disabled = disabled || (input.applied.length === 0 && this.heads.length === 0);
    if (!input.canRun && input.staticExport === true) this.note.textContent = "Static export: no kernel to ablate heads in.";
    else if (!input.canRun) this.note.textContent = "Precomputed attention: there is no model to ablate.";
    else if (input.applied.length > 0) this.note.textContent = `Ablated: ${headList(input.applied)} (${input.appliedLabel}).`;
    else if (this.heads.length === 0) this.note.textContent = "Select a head in the atlas and add it.";
    else this.note.textContent = "Not applied yet.";
  }

  private toggleSelected(): void {
    if (this.input === null) return;
    this.heads = toggleHead(this.heads, this.input.selected.layer, this.input.selected.head);
    this.render();
  }

  private remove(layer: number, head: number): void {
    this.heads = toggleHead(this.heads, layer, head);
    this.render();
    this.toggle.focus();
  }

  private submit(): void {
    if (this.runButton.disabled) return;
    const choice = this.method.value as AblateChoice;
    this.events.ablate({
      heads: this.heads.map(([l, hd]) => [l, hd]),
      method: choice === "zero" ? "zero" : "mean",
      reference: choice === "reference" ? this.reference.value : null,
    });
  }
}

/** Enter (without Shift) in a text field runs `submit`; Shift+Enter keeps a newline. */
export function enterSubmits(el: HTMLTextAreaElement | HTMLInputElement, submit: () => void): void {
  el.addEventListener("keydown", (event: Event) => {
    const e = event as KeyboardEvent;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
}
