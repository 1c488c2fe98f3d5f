/**
 * Painted heads kept for a quick switch back: each head's pixels, coloured through one LUT,
 * in a least-recently-used map bounded in bytes. A switch to a kept head is then a single
 * `putImageData`, with no pass through the colour table. A new LUT (theme change) empties it.
 */
import type { HeadPattern } from "../model/head";
import { paintPattern, type Pixels } from "./paint";

/** 64 MiB: sixteen heads of 1024 tokens (4 MiB each), as many as the head cache holds. */
export const PAINTED_BUDGET = 64 * 2 ** 20;

export class PaintedHeads<Image extends Pixels> {
  private readonly entries = new Map<HeadPattern, Image>();
  private lut: Uint8ClampedArray | null = null;
  private held = 0;

  constructor(
    private readonly create: (width: number, height: number) => Image,
    readonly budget: number = PAINTED_BUDGET,
  ) {}

  /** Bytes of pixels held. */
  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Whether `p` is kept painted through `lut`. */
  has(p: HeadPattern, lut: Uint8ClampedArray): boolean {
    return lut === this.lut && this.entries.has(p);
  }

  /**
   * `p` painted through `lut`: the kept pixels (and `kept` true), or pixels painted now and
   * kept, the least recently used heads dropped to stay within the budget.
   */
  paint(p: HeadPattern, lut: Uint8ClampedArray): { image: Image; kept: boolean } {
    if (lut !== this.lut) this.clear(lut);
    const hit = this.entries.get(p);
    if (hit !== undefined) {
      this.entries.delete(p);
      this.entries.set(p, hit);
      return { image: hit, kept: true };
    }
    const image = this.create(p.seqLen, p.seqLen);
    paintPattern(p, lut, image);
    const size = image.data.byteLength;
    if (size <= this.budget) {
      this.entries.set(p, image);
      this.held += size;
      for (const [old, pixels] of this.entries) {
        if (this.held <= this.budget) break;
        this.entries.delete(old);
        this.held -= pixels.data.byteLength;
      }
    }
    return { image, kept: false };
  }

  clear(lut: Uint8ClampedArray | null = null): void {
    this.entries.clear();
    this.held = 0;
    this.lut = lut;
  }
}
