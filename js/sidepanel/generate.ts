/**
 * Generate, then inspect: a count and a button under the prompt box. The model appends that
 * many tokens to the current run in the kernel (docs/wire.md, `generate`); the kernel checks
 * the count, and its error shows right under the button.
 */
import { button, h } from "../renderers/dom";
import { ActionError } from "./status";

export const DEFAULT_COUNT = 20;

/**
 * What the count box holds, as sent: a number when the text is one (the kernel refuses
 * fractions, zero and negatives with a message), else the text itself (refused as well).
 */
export function countOf(text: string): number | string {
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text.slice(0, 20);
}

export class GenerateControl {
  readonly el: HTMLElement;
  readonly input: HTMLInputElement;
  private readonly button: HTMLButtonElement;
  /** The kernel's error when generation failed (a bad count, the model's context is full). */
  readonly error = new ActionError();

  constructor(onGenerate: (count: number | string) => void, idPrefix: string) {
    this.el = h("div", "hs-generate");
    this.input = h("input", "hs-generate-count");
    this.input.type = "number";
    this.input.min = "1";
    this.input.step = "1";
    this.input.value = String(DEFAULT_COUNT);
    this.input.id = `${idPrefix}-generate-count`;
    const label = h("label", "hs-generate-label", "New tokens");
    label.htmlFor = this.input.id;
    const submit = (): void => {
      if (!this.button.disabled) onGenerate(countOf(this.input.value));
    };
    this.button = button("hs-generate-run", "Generate", submit);
    this.button.title = "Append tokens the model picks (greedy) to this run and show the whole sequence";
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.isComposing) {
        e.preventDefault();
        submit();
      }
    });
    const row = h("div", "hs-generate-row");
    row.append(label, this.input, this.button);
    this.el.append(row, this.error.el);
  }

  /** Enabled with a model and a live kernel; busy (and disabled) while the kernel runs. */
  update(canRun: boolean, running: boolean): void {
    this.button.disabled = !canRun || running;
    this.input.disabled = !canRun;
    this.el.setAttribute("aria-busy", String(running));
    this.button.textContent = running ? "Working…" : "Generate";
  }
}
