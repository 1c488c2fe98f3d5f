/** A 0-to-1 colour bar painted from a 256-entry lookup table, with its end labels. */
import { context2d, h } from "./dom";

export class Legend {
  /** The row (labels and bar) to place in the layout. */
  readonly el: HTMLElement;
  private readonly bar: HTMLCanvasElement;
  private readonly low: HTMLElement;
  private readonly high: HTMLElement;

  constructor(private readonly what: string, low = "0", high = "1") {
    this.bar = h("canvas", "hs-legend");
    this.bar.width = 256;
    this.bar.height = 1;
    this.bar.setAttribute("role", "img");
    this.low = h("span", "hs-legend-label");
    this.high = h("span", "hs-legend-label");
    this.el = h("div", "hs-legend-row");
    this.el.append(this.low, this.bar, this.high);
    this.setRange(low, high);
  }

  /** The end labels (for scales that are not 0 to 1). */
  setRange(low: string, high: string): void {
    this.low.textContent = low;
    this.high.textContent = high;
    this.bar.setAttribute("aria-label", `Colour scale: ${this.what} ${low} (left) to ${high} (right)`);
  }

  paint(lut: Uint8ClampedArray): void {
    const ctx = context2d(this.bar);
    const image = ctx.createImageData(256, 1);
    image.data.set(lut.subarray(0, 256 * 4));
    ctx.putImageData(image, 0, 0);
  }
}
