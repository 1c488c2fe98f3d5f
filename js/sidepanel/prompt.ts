/**
 * The prompt box: Enter (without Shift) or the Run button asks the kernel to re-run the model.
 * A prompt submitted while another runs is queued, never dropped; the box never overwrites
 * text the user has typed since it was last filled.
 */
import { button, h } from "../renderers/dom";

const HINT = "Enter runs, Shift+Enter adds a line.";
const EMPTY = "Type a prompt first: the box is empty.";

export class PromptBox {
  readonly el: HTMLElement;
  readonly textarea: HTMLTextAreaElement;
  private readonly runButton: HTMLButtonElement;
  private readonly note: HTMLElement;
  private shownRunId = -1;
  /** The text the box was last filled with or submitted: anything else was typed since. */
  private synced = "";
  /** Why the box cannot run now ("" when it can). */
  private blocked = "";
  private emptyWarning = false;

  constructor(
    private readonly onRun: (prompt: string) => void,
    idPrefix: string,
  ) {
    this.el = h("section", "hs-prompt");
    const label = h("label", "hs-section-title", "Prompt");
    this.textarea = h("textarea", "hs-prompt-input");
    this.textarea.id = `${idPrefix}-prompt`;
    this.textarea.rows = 3;
    this.textarea.spellcheck = false;
    label.htmlFor = this.textarea.id;
    this.note = h("p", "hs-note");
    this.note.id = `${idPrefix}-prompt-note`;
    this.runButton = button("hs-run hs-primary", "Run", () => this.submit());
    const row = h("div", "hs-prompt-row");
    row.append(this.note, this.runButton);
    this.el.append(label, this.textarea, row);
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.textarea.addEventListener("input", () => {
      if (this.emptyWarning && this.textarea.value.trim() !== "") {
        this.emptyWarning = false;
        this.renderNote();
      }
    });
  }

  /** Reflect the traits. A new run fills the box with its prompt, except when the user has
   * typed since the box was last filled, when a prompt from this box is still waiting or
   * running (the box holds it), or when the run has no text prompt (the probe). */
  update(prompt: string, runId: number, blocked: string, running: boolean, pending = false): void {
    if (runId !== this.shownRunId) {
      this.shownRunId = runId;
      if (prompt !== "" && !pending && this.textarea.value === this.synced) this.fill(prompt);
    }
    this.blocked = blocked;
    this.textarea.disabled = blocked !== "";
    this.runButton.disabled = blocked !== "";
    this.runButton.textContent = running ? "Queue" : "Run";
    this.runButton.title = running ? "Run this prompt as soon as the current run ends" : "";
    this.renderNote();
  }

  /** Put `prompt` in the box (e.g. from the history) and run it. */
  runText(prompt: string): void {
    this.fill(prompt);
    this.submit();
  }

  private fill(text: string): void {
    this.textarea.value = text;
    this.synced = text;
  }

  private renderNote(): void {
    this.note.textContent = this.blocked !== ""
      ? this.blocked
      : this.emptyWarning
        ? EMPTY
        : HINT;
    this.note.setAttribute("role", this.emptyWarning ? "alert" : "note");
    if (this.blocked === "" && !this.emptyWarning) this.textarea.removeAttribute("aria-describedby");
    else this.textarea.setAttribute("aria-describedby", this.note.id);
  }

  private submit(): void {
    if (this.blocked !== "") return;
    const prompt = this.textarea.value;
    if (prompt.trim() === "") {
      this.emptyWarning = true;
      this.renderNote();
      return;
    }
    this.synced = prompt;
    this.onRun(prompt);
  }
}
