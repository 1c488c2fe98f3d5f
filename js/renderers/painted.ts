/**
 * Painted heads kept for a quick switch back: each head's pixels, coloured through a LUT, in a
 * least-recently-used map bounded in bytes. A switch to a kept head is then a single
 * `putImageData`, with no pass through the colour table. One map serves every view of the page
 * ({@link keptHeads}), so the bound holds however many widgets are shown.
 */
import type { HeadPattern } from "../model/head";
import { paintPattern, type Pixels } from "./paint";

/** 64 MiB: sixteen heads of 1024 tokens (4 MiB each), one of 4096 tokens. */
export const PAINTED_BUDGET = 64 * 2 ** 20;

interface Entry<Image> {
  readonly lut: Uint8ClampedArray;
  readonly image: Image;
}

export class PaintedHeads<Image extends Pixels> {
  private readonly entries = new Map<HeadPattern, Entry<Image>>();
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
    return this.entries.get(p)?.lut === lut;
  }

  /**
   * `p` painted through `lut`: the kept pixels (and `kept` true), or pixels painted now and
   * kept (replacing those of another LUT), the least recently used heads dropped to stay within
   * the budget.
   */
  paint(p: HeadPattern, lut: Uint8ClampedArray): { image: Image; kept: boolean } {
    const hit = this.entries.get(p);
    if (hit !== undefined) {
      this.entries.delete(p);
      if (hit.lut === lut) {
        this.entries.set(p, hit);
        return { image: hit.image, kept: true };
      }
      this.held -= hit.image.data.byteLength;
    }
    const image = this.create(p.seqLen, p.seqLen);
    paintPattern(p, lut, image);
    const size = image.data.byteLength;
    if (size <= this.budget) {
      this.entries.set(p, { lut, image });
      this.held += size;
      for (const [old, entry] of this.entries) {
        if (this.held <= this.budget) break;
        this.entries.delete(old);
        this.held -= entry.image.data.byteLength;
      }
    }
    return { image, kept: false };
  }

  clear(): void {
    this.entries.clear();
    this.held = 0;
  }
}

let shared: PaintedHeads<ImageData> | null = null;

/** The page's painted heads, shared by every view (created on first use). */
export function keptHeads(): PaintedHeads<ImageData> {
  shared ??= new PaintedHeads((width, height) => new ImageData(width, height));
  return shared;
}
