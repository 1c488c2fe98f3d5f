/**
 * Display options: how the token and pattern views draw the head, in the browser only.
 * "Hide BOS" (state/reweight) gives key 0 weight 0 and renormalizes each row; the atlas keeps
 * the raw thumbnails, and a hint says so.
 */
import { h } from "../renderers/dom";

export const HIDE_BOS_HINT = "Key 0 (BOS) hidden; each row renormalized over the other keys. The atlas still shows raw attention.";
export const NO_BOS_HINT = "Off: this run's first token is not a BOS that its model prepends.";

export class DisplayOptions {
  readonly el: HTMLElement;
  readonly hideBos: HTMLInputElement;
  private readonly hint: HTMLElement;

  constructor(onHideBos: (on: boolean) => void, idPrefix: string) {
    this.el = h("section", "hs-display");
    this.el.append(h("div", "hs-section-title", "Display"));
    this.hideBos = h("input", "hs-hide-bos");
    this.hideBos.type = "checkbox";
    this.hideBos.id = `${idPrefix}-hide-bos`;
    const label = h("label", "hs-check", "");
    label.htmlFor = this.hideBos.id;
    label.append(this.hideBos, document.createTextNode(" Hide BOS (renormalize rows)"));
    this.hint = h("p", "hs-display-hint");
    this.hint.id = `${idPrefix}-hide-bos-hint`;
    this.hideBos.setAttribute("aria-describedby", this.hint.id);
    this.hideBos.addEventListener("change", () => onHideBos(this.hideBos.checked));
    this.el.append(label, this.hint);
  }

  /** `on`: the view's state; `available`: the run's first token is the model's BOS. */
  update(on: boolean, available: boolean): void {
    this.hideBos.checked = on && available;
    this.hideBos.disabled = !available;
    const text = !available ? NO_BOS_HINT : on ? HIDE_BOS_HINT : "";
    this.hint.textContent = text;
    this.hint.hidden = text === "";
  }
}
