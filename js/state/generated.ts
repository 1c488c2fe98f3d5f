/**
 * Generated tokens (docs/wire.md, `generated_from`): which positions the model generated after
 * the prompt, and how the token view and the tooltips say so.
 */

/** The word the tooltips and the chips' accessible description use. */
export const GENERATED = "generated";

/** Whether token `index` was generated (`generatedFrom` -1: nothing was). */
export function isGenerated(index: number, generatedFrom: number): boolean {
  return generatedFrom >= 0 && index >= generatedFrom;
}

/** What a tooltip puts after token `index`: " (generated)" or "". */
export function generatedSuffix(index: number, generatedFrom: number): string {
  return isGenerated(index, generatedFrom) ? ` (${GENERATED})` : "";
}

/**
 * Mark the chips of generated tokens: the class `hs-tok-generated` (styled in both themes) and
 * an accessible description; other chips lose both. The chips' text is left as it is.
 */
export function markGenerated(chipAt: (index: number) => HTMLElement | undefined, count: number, generatedFrom: number): void {
  for (let i = 0; i < count; i++) {
    const chip = chipAt(i);
    if (chip === undefined) continue;
    const on = isGenerated(i, generatedFrom);
    if (chip.classList.contains("hs-tok-generated") === on) continue;
    chip.classList.toggle("hs-tok-generated", on);
    if (on) chip.setAttribute("aria-description", GENERATED);
    else chip.removeAttribute("aria-description");
  }
}
