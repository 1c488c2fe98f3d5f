/** "Known heads": the heads whose roles the model card (or the user) names, one click away. */
import type { HeadRef } from "../renderers/atlas";
import { button, h } from "../renderers/dom";
import type { KnownHead } from "../model/traits";
import { scoreLabel } from "../model/scores";

export class KnownHeadsPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private key = "";
  private buttons: { ref: HeadRef; el: HTMLButtonElement }[] = [];

  constructor(private readonly select: (ref: HeadRef) => void) {
    this.el = h("section", "hs-known");
    this.el.hidden = true;
    this.list = h("ul", "hs-known-list");
    this.list.setAttribute("aria-label", "Heads with known roles");
    this.el.append(h("div", "hs-section-title", "Known heads"), this.list);
  }

  /** List `heads` by role, in their order (hidden when there are none); mark the selected one. */
  update(heads: readonly KnownHead[], selected: HeadRef): void {
    const key = JSON.stringify(heads);
    if (key !== this.key) {
      this.key = key;
      this.el.hidden = heads.length === 0;
      this.buttons = [];
      const rows = new Map<string, HTMLLIElement>();
      for (const { role, layer, head } of heads) {
        const label = scoreLabel(role);
        let row = rows.get(role);
        if (row === undefined) {
          row = h("li", "hs-known-role");
          row.append(h("span", "hs-known-label", label));
          rows.set(role, row);
        }
        const el = button("hs-top-head-btn hs-known-head", `L${layer} H${head}`,
          () => this.select({ layer, head }), `Open layer ${layer}, head ${head} (${label})`);
        row.append(el);
        this.buttons.push({ ref: { layer, head }, el });
      }
      this.list.replaceChildren(...rows.values());
    }
    for (const { ref, el } of this.buttons) {
      el.setAttribute("aria-pressed", String(ref.layer === selected.layer && ref.head === selected.head));
    }
  }
}
