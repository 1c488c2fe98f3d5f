/**
 * The "Value-weighted" display option (docs/value-weighted.md): a labelled checkbox in the side
 * panel's display options. Its state is the kernel's `value_weighted` trait, so every view of a
 * widget and `w.value_weighted` in Python agree. Disabled, with the reason shown, where the
 * model's weights cannot be read (a remote model, precomputed attention, a static export).
 */
import { h } from "../renderers/dom";

export const VALUE_WEIGHTED_HINT =
  "Each weight times ‖v W_O‖ of its key, rows renormalized: token view, pattern and atlas are value-weighted.";

export class ValueWeightedOption {
  readonly el: HTMLElement;
  readonly input: HTMLInputElement;
  private readonly hint: HTMLElement;

  constructor(onChange: (on: boolean) => void, idPrefix: string) {
    this.el = h("div", "hs-value-weighted");
    this.input = h("input", "hs-value-weighted-input");
    this.input.type = "checkbox";
    this.input.id = `${idPrefix}-value-weighted`;
    const label = h("label", "hs-check", "");
    label.htmlFor = this.input.id;
    label.title = "Scale each attention weight by the norm of what its key writes through the head (‖v W_O‖)";
    label.append(this.input, document.createTextNode(" Value-weighted"));
    this.hint = h("p", "hs-value-weighted-hint");
    this.hint.id = `${idPrefix}-value-weighted-hint`;
    this.hint.setAttribute("aria-live", "polite");
    this.input.setAttribute("aria-describedby", this.hint.id);
    this.input.addEventListener("change", () => onChange(this.input.checked));
    this.el.append(label, this.hint);
  }

  /**
   * `on`: the trait; `reason`: why it is unavailable ("" when it is not); `pending`: what the
   * kernel is still computing ("" when nothing); `live`: the kernel is connected.
   */
  update(on: boolean, reason: string, pending: string, live: boolean): void {
    this.input.checked = on && reason === "";
    this.input.disabled = reason !== "" || !live;
    const text = reason !== "" ? `Unavailable: ${reason}` : pending !== "" ? pending : on ? VALUE_WEIGHTED_HINT : "";
    this.hint.textContent = text;
    this.hint.hidden = text === "";
    this.el.setAttribute("aria-busy", String(pending !== ""));
    this.el.classList.toggle("hs-busy", pending !== "");
  }
}
