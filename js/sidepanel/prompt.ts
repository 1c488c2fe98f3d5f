/** The prompt box: Enter (without Shift) or the Run button asks the kernel to re-run the model. */
import { button, h } from "../renderers/dom";

export class PromptBox {
  readonly el: HTMLElement;
  readonly textarea: HTMLTextAreaElement;
  private readonly runButton: HTMLButtonElement;
  private readonly note: HTMLElement;
  private shownRunId = -1;

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
  }

  /** Reflect the traits. The box takes the run's prompt only when a new run succeeded. */
  update(prompt: string, runId: number, canRun: boolean, running: boolean): void {
    if (runId !== this.shownRunId) {
      this.shownRunId = runId;
      this.textarea.value = prompt;
    }
    this.textarea.disabled = !canRun;
    this.runButton.disabled = !canRun || running;
    this.runButton.textContent = running ? "Running…" : "Run";
    this.note.textContent = canRun
      ? "Enter runs, Shift+Enter adds a line."
      : "Precomputed attention: there is no model to re-run. Use headscope.show(model, prompt) for a live widget.";
    if (canRun) this.textarea.removeAttribute("aria-describedby");
    else this.textarea.setAttribute("aria-describedby", this.note.id);
  }

  /** Put `prompt` in the box (e.g. from the history) and run it. */
  runText(prompt: string): void {
    this.textarea.value = prompt;
    this.submit();
  }

  private submit(): void {
    if (this.runButton.disabled) return;
    const prompt = this.textarea.value;
    if (prompt.trim() === "") return;
    this.onRun(prompt);
  }
}
