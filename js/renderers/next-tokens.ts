/**
 * The ablation's effect under the token view: the total loss change, the loss-change colour
 * scale, and, at the hovered (or locked) position, two separate things: the loss of predicting
 * that token, and the top predicted next tokens after it, clean against ablated. Token strings
 * are untrusted: textContent only, through the shared display transform.
 */
import { headList, lossLine, nextTokensTitle, noLossLine, signed, topNext, totals, type Ablation } from "../model/interventions";
import { h } from "./dom";
import { Legend } from "./legend";
import { quoteToken } from "./text";

export class AblationEffect {
  readonly el: HTMLElement;
  private readonly total: HTMLElement;
  readonly legend = new Legend("loss change");
  private readonly loss: HTMLElement;
  private readonly position: HTMLElement;
  private readonly clean: HTMLOListElement;
  private readonly ablated: HTMLOListElement;

  constructor() {
    this.el = h("section", "hs-ablation-effect");
    this.el.hidden = true;
    this.total = h("p", "hs-ablation-total");
    this.total.setAttribute("role", "status");
    this.loss = h("p", "hs-loss-line");
    this.position = h("p", "hs-next-title hs-hint");
    this.clean = h("ol", "hs-next-list hs-next-clean");
    this.ablated = h("ol", "hs-next-list hs-next-ablated");
    const columns = h("div", "hs-next-columns");
    const left = h("div", "hs-next-column");
    left.append(h("div", "hs-field-label", "clean"), this.clean);
    const right = h("div", "hs-next-column");
    right.append(h("div", "hs-field-label", "ablated"), this.ablated);
    columns.append(left, right);
    this.el.append(this.total, this.legend.el, this.loss, this.position, columns);
  }

  update(a: Ablation | null, tokens: readonly string[], position: number | null, lut: Uint8ClampedArray, scale: number, showLegend: boolean): void {
    if (this.el.hidden !== (a === null)) this.el.hidden = a === null;
    if (a === null) return;
    const t = totals(a);
    this.total.textContent =
      `Ablating ${headList(a.heads)} (${a.label}): mean loss ${t.clean.toFixed(3)} → ${t.ablated.toFixed(3)} ` +
      `(${signed(t.change)})`;
    this.legend.el.hidden = !showLegend;
    if (showLegend) {
      this.legend.setRange(signed(-scale, 2), signed(scale, 2));
      this.legend.paint(lut);
    }
    const p = position ?? a.seqLen - 1;
    const token = tokens[p] ?? "";
    this.loss.textContent = lossLine(a, p, token) ?? noLossLine(p, token);
    this.position.textContent = nextTokensTitle(p, token);
    fill(this.clean, topNext(a, p, "clean"));
    fill(this.ablated, topNext(a, p, "ablated"));
  }
}

function fill(list: HTMLOListElement, top: readonly { token: string; prob: number }[]): void {
  list.replaceChildren(
    ...top.map(({ token, prob }) => {
      const item = h("li", "hs-next-item");
      item.append(h("span", "hs-next-token", quoteToken(token)), h("span", "hs-next-prob", `${(prob * 100).toFixed(1)} %`));
      return item;
    }),
  );
}
