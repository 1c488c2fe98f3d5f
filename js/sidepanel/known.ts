/** "Known heads": the heads whose roles the model card (or the user) names, one click away. */
import type { HeadRef } from "../renderers/atlas";
import { button, h } from "../renderers/dom";
import type { KnownHead } from "../model/traits";

/** One head of a role row; `strongest` marks the first of a role that lists several. */
export interface KnownButton {
  readonly layer: number;
  readonly head: number;
  readonly strongest: boolean;
  /** The button's visible text, e.g. "L0 H6" or "L0 H6 (strongest)". */
  readonly text: string;
  /** The button's accessible name and tooltip. */
  readonly name: string;
}

export interface KnownRow {
  /** The role exactly as given (shown with textContent: it is untrusted text). */
  readonly role: string;
  readonly heads: readonly KnownButton[];
  /** The row label's tooltip. */
  readonly title: string;
}

/**
 * Group `heads` by role, roles in order of first appearance, heads in the given order.
 *
 * The list is strongest first within a role (docs/wire.md, `known_heads`), so when a role has
 * several heads the first one is marked as the strongest. A head listed twice under one role is
 * shown once.
 */
export function knownRows(heads: readonly KnownHead[]): KnownRow[] {
  const byRole = new Map<string, KnownHead[]>();
  for (const item of heads) {
    const list = byRole.get(item.role) ?? [];
    if (!list.some((x) => x.layer === item.layer && x.head === item.head)) list.push(item);
    byRole.set(item.role, list);
  }
  return [...byRole].map(([role, list]) => {
    const ranked = list.length > 1;
    return {
      role,
      title: ranked ? `${role}: ${list.length} heads, strongest first` : role,
      heads: list.map(({ layer, head }, i) => {
        const strongest = ranked && i === 0;
        return {
          layer,
          head,
          strongest,
          text: strongest ? `L${layer} H${head} (strongest)` : `L${layer} H${head}`,
          name: `Open layer ${layer}, head ${head} (${role}${strongest ? `, the strongest of ${list.length}` : ""})`,
        };
      }),
    };
  });
}

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

  /** List `heads` by role, strongest first (hidden when there are none); mark the selected one. */
  update(heads: readonly KnownHead[], selected: HeadRef): void {
    const key = JSON.stringify(heads);
    if (key !== this.key) {
      this.key = key;
      this.el.hidden = heads.length === 0;
      this.buttons = [];
      const rows = knownRows(heads).map((row) => {
        const li = h("li", "hs-known-role");
        const label = h("span", "hs-known-label", row.role);
        label.title = row.title;
        li.append(label);
        for (const { layer, head, strongest, text, name } of row.heads) {
          const el = button("hs-top-head-btn hs-known-head", text, () => this.select({ layer, head }), name);
          if (strongest) el.dataset.strongest = "true";
          li.append(el);
          this.buttons.push({ ref: { layer, head }, el });
        }
        return li;
      });
      this.list.replaceChildren(...rows);
    }
    for (const { ref, el } of this.buttons) {
      el.setAttribute("aria-pressed", String(ref.layer === selected.layer && ref.head === selected.head));
    }
  }
}
