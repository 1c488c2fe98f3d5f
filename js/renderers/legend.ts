/** A 0-to-1 colour bar painted from a 256-entry lookup table, with its end labels. */
import { context2d, h } from "./dom";

export class Legend {
  /** The row (labels and bar) to place in the layout. */
  readonly el: HTMLElement;
  private readonly bar: HTMLCanvasElement;

  constructor(what: string) {
    this.bar = h("canvas", "hs-legend");
    this.bar.width = 256;
    this.bar.height = 1;
    this.bar.setAttribute("role", "img");
    this.bar.setAttribute("aria-label", `Colour scale: ${what} 0 (left) to 1 (right)`);
    this.el = h("div", "hs-legend-row");
    this.el.append(h("span", "hs-legend-label", "0"), this.bar, h("span", "hs-legend-label", "1"));
  }

  paint(lut: Uint8ClampedArray): void {
    const ctx = context2d(this.bar);
    const image = ctx.createImageData(256, 1);
    image.data.set(lut.subarray(0, 256 * 4));
    ctx.putImageData(image, 0, 0);
  }
}
