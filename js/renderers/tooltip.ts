/**
 * One floating tooltip per widget, positioned inside the widget's root element. It goes beside
 * what is hovered, never over it, and keeps clear of the widget's header, the section headings
 * and the ablation's headline where it can; near the side panel it opens away from the panel.
 */
import { weight as rawWeightOf, type HeadPattern } from "../model/head";
import { generatedSuffix } from "../state/generated";
import { isolatedToken } from "./text";

/** A box in client (viewport) coordinates. */
export interface Box {
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
}

/** Elements the tooltip should not cover (besides the hovered thing itself). */
const KEEP_CLEAR = ".hs-header, .hs-section-title, .hs-ablation-total, .hs-loss-line, .hs-next-title, .hs-action-error";
/** Distance between the hovered box and the tooltip, and from the widget's edges. */
const GAP = 8;
const EDGE = 4;

export function intersects(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

function overlapArea(a: Box, b: Box): number {
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const hgt = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  return w > 0 && hgt > 0 ? w * hgt : 0;
}

/** A box the tooltip should keep off, and how much covering it costs per square pixel. */
export interface Keep {
  readonly box: Box;
  readonly weight: number;
}

/**
 * Where a `width × height` tooltip goes (its top-left corner, client coordinates): the first
 * place beside `target` (below, right, above, left, each slid along the target's side; left
 * first when `awayLeft`) that, kept inside `bounds`, covers neither `target` nor any of `keep`;
 * failing that, the place whose covered area costs least (the target costing most).
 */
export function placeTooltip(
  width: number,
  height: number,
  target: Box,
  bounds: Box,
  keep: readonly Keep[],
  awayLeft: boolean,
): { x: number; y: number } {
  const xs = [target.left, target.right - width, (target.left + target.right - width) / 2];
  const ys = [target.top, target.bottom - height, (target.top + target.bottom - height) / 2];
  const below = xs.map((x) => ({ x, y: target.bottom + GAP }));
  const above = xs.map((x) => ({ x, y: target.top - GAP - height }));
  const right = ys.map((y) => ({ x: target.right + GAP, y }));
  const left = ys.map((y) => ({ x: target.left - GAP - width, y }));
  const order = awayLeft ? [...left, ...below, ...above, ...right] : [...below, ...right, ...above, ...left];
  let best = { x: 0, y: 0 };
  let bestCost = Infinity;
  for (const p of order) {
    const x = Math.max(bounds.left + EDGE, Math.min(p.x, bounds.right - EDGE - width));
    const y = Math.max(bounds.top + EDGE, Math.min(p.y, bounds.bottom - EDGE - height));
    const box = { left: x, top: y, right: x + width, bottom: y + height };
    const cost = 1000 * overlapArea(box, target) + keep.reduce((sum, k) => sum + k.weight * overlapArea(box, k.box), 0);
    if (cost === 0) return { x, y };
    if (cost < bestCost) {
      bestCost = cost;
      best = { x, y };
    }
  }
  return best;
}

export class Tooltip {
  readonly el: HTMLDivElement;

  constructor(private readonly root: HTMLElement) {
    this.el = document.createElement("div");
    this.el.className = "hs-tooltip";
    this.el.setAttribute("role", "tooltip");
    this.el.hidden = true;
    root.appendChild(this.el);
  }

  /**
   * Show `lines` (plain text) beside `target` (the hovered element or box; by default a small
   * box around the client point `(x, y)`).
   *
   * Everything around is measured first, then the text is written and only the tooltip itself
   * is measured: called before the caller's own writes of the event (as the view does), no
   * measurement here makes the browser restyle anything else.
   */
  show(lines: readonly string[], clientX: number, clientY: number, target?: Element | Box): void {
    const box = this.root.getBoundingClientRect();
    const [borderLeft, borderTop] = [this.root.clientLeft, this.root.clientTop];
    const around: Box =
      target instanceof Element
        ? target.getBoundingClientRect()
        : (target ?? { left: clientX - 6, top: clientY - 6, right: clientX + 6, bottom: clientY + 6 });
    const keep: Keep[] = [];
    for (const el of this.root.querySelectorAll(KEEP_CLEAR)) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) keep.push({ box: r, weight: 1 });
    }
    // over the side panel the tooltip opens away from it; elsewhere it keeps off the panel
    const side = this.root.querySelector(".hs-side")?.getBoundingClientRect();
    const inSide = side !== undefined && clientX >= side.left && clientX <= side.right && clientY >= side.top && clientY <= side.bottom;
    if (side !== undefined && !inSide && side.width > 0) keep.push({ box: side, weight: 0.05 });
    this.write(lines);
    const tip = this.el.getBoundingClientRect();
    const { x, y } = placeTooltip(tip.width, tip.height, around, box, keep, inSide);
    // the tooltip is placed from the root's padding box, inside its border
    const dx = x - box.left - borderLeft;
    const dy = y - box.top - borderTop;
    this.el.style.transform = `translate(${Math.round(dx)}px, ${Math.round(dy)}px)`;
  }

  hide(): void {
    if (!this.el.hidden) this.el.hidden = true;
  }

  /** One line per `<div>` (plain text); lines already shown are left as they are. */
  private write(lines: readonly string[]): void {
    const divs = this.el.children;
    if (divs.length !== lines.length) {
      this.el.replaceChildren(...lines.map(() => document.createElement("div")));
    }
    lines.forEach((line, i) => {
      const div = divs[i];
      if (div.textContent !== line) div.textContent = line;
    });
    if (this.el.hidden) this.el.hidden = false;
  }
}

export function formatWeight(weight: number): string {
  return weight.toFixed(3);
}

/** What a tooltip adds: generated tokens (state/generated), a reweighting (state/reweight). */
export interface PairContext {
  /** Position of the first generated token; -1 when none. */
  readonly generatedFrom: number;
  /** Said after the weight when the view reweights rows ("" when it does not). */
  readonly weightNote: string;
  /** The head as the kernel sent it, when the shown weights are value-weighted: the line then
   * gives the value-weighted share and this raw weight (docs/value-weighted.md). */
  readonly raw?: HeadPattern | null;
}

/** Tooltip lines for one (query, key) pair; each token is a quoted bidi isolate. */
export function pairLines(
  tokens: readonly string[],
  query: number,
  key: number,
  weight: number,
  context: PairContext = { generatedFrom: -1, weightNote: "" },
): string[] {
  const q = `${isolatedToken(tokens[query] ?? "")}${generatedSuffix(query, context.generatedFrom)}`;
  const k = `${isolatedToken(tokens[key] ?? "")}${generatedSuffix(key, context.generatedFrom)}`;
  const raw = context.raw;
  const line = raw !== undefined && raw !== null
    ? `value-weighted ${formatWeight(weight)}${context.weightNote} · weight ${formatWeight(rawWeightOf(raw, query, key))}`
    : `weight ${formatWeight(weight)}${context.weightNote}`;
  return [`query ${query} ${q} → key ${key} ${k}`, line];
}
