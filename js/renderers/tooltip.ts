/** One floating tooltip per widget, positioned inside the widget's root element. */
import { isolatedToken } from "./text";

export class Tooltip {
  readonly el: HTMLDivElement;

  constructor(private readonly root: HTMLElement) {
    this.el = document.createElement("div");
    this.el.className = "hs-tooltip";
    this.el.setAttribute("role", "tooltip");
    this.el.hidden = true;
    root.appendChild(this.el);
  }

  /** Show `lines` (plain text) near client point `(x, y)`. */
  show(lines: readonly string[], clientX: number, clientY: number): void {
    this.el.replaceChildren(
      ...lines.map((line) => {
        const div = document.createElement("div");
        div.textContent = line;
        return div;
      }),
    );
    this.el.hidden = false;
    const box = this.root.getBoundingClientRect();
    const tip = this.el.getBoundingClientRect();
    const x = Math.min(clientX - box.left + 14, box.width - tip.width - 4);
    const below = clientY - box.top + 16;
    const y = below + tip.height > box.height ? clientY - box.top - tip.height - 10 : below;
    this.el.style.transform = `translate(${Math.max(4, x)}px, ${Math.max(4, y)}px)`;
  }

  hide(): void {
    this.el.hidden = true;
  }
}

export function formatWeight(weight: number): string {
  return weight.toFixed(3);
}

/** Tooltip lines for one (query, key) pair; each token is a quoted bidi isolate. */
export function pairLines(
  tokens: readonly string[],
  query: number,
  key: number,
  weight: number,
): string[] {
  return [
    `query ${query} ${isolatedToken(tokens[query] ?? "")} → key ${key} ${isolatedToken(tokens[key] ?? "")}`,
    `weight ${formatWeight(weight)}`,
  ];
}
