/** Earlier prompts (newest first), each one click away. */
import { button, fold, h } from "../renderers/dom";
import { displayToken, isolate } from "../renderers/text";

export class HistoryList {
  readonly el: HTMLElement;
  private readonly list: HTMLOListElement;
  private shown: readonly string[] = [];

  constructor(private readonly onPick: (prompt: string) => void) {
    this.el = fold("hs-history", "History", false);
    this.list = h("ol", "hs-history-list");
    this.list.setAttribute("aria-label", "Earlier prompts");
    this.el.append(this.list);
  }

  update(history: readonly string[], canRun: boolean): void {
    this.el.hidden = history.length === 0;
    if (history.length !== this.shown.length || history.some((p, i) => p !== this.shown[i])) {
      this.shown = history;
      this.list.replaceChildren(
        ...history.map((prompt) => {
          const item = h("li", "hs-history-item");
          // one line: newlines and controls drawn visibly; the whole prompt in the title
          const b = button("hs-history-run", displayToken(prompt, false), () => this.onPick(prompt));
          b.title = `Run: ${isolate(prompt)}`;
          item.append(b);
          return item;
        }),
      );
    }
    for (const b of this.list.querySelectorAll("button")) b.disabled = !canRun;
  }
}
