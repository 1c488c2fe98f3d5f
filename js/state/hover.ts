/** What the tooltip says about a hovered token: pure, so that it can be tested without a page. */
import { strongest, weight, type HeadPattern } from "../model/head";
import { lossLine, noLossLine, type Ablation } from "../model/interventions";
import { isolatedToken } from "../renderers/text";
import { pairLines, type PairContext } from "../renderers/tooltip";
import { generatedSuffix } from "./generated";
import { tooltipPair, type ViewState } from "./view-state";

/**
 * The lines for token `index`: its loss change when tokens are coloured by an ablation; else the
 * pair it forms with the focused token, or with its strongest partner; else the token alone.
 */
export function tokenTooltip(
  tokens: readonly string[],
  state: ViewState,
  index: number,
  pattern: HeadPattern | null,
  ablation: Ablation | null,
  byLoss: boolean,
  context: PairContext = { generatedFrom: -1, weightNote: "" },
): string[] {
  const token = tokens[index] ?? "";
  if (byLoss && ablation !== null) return [lossLine(ablation, index, token) ?? noLossLine(index, token)];
  const p = pattern;
  const pair = p === null ? null : tooltipPair(state, (mode, i) => strongest(p, mode, i));
  if (p === null || pair === null) return [`token ${index} ${isolatedToken(token)}${generatedSuffix(index, context.generatedFrom)}`];
  const [pairLine, weightLine] = pairLines(tokens, pair.query, pair.key, weight(p, pair.query, pair.key), context);
  const anchored = state.focus !== null && state.focus !== index;
  const hint = anchored ? "" : state.mode === "query" ? " (strongest key)" : " (strongest query)";
  // the ablation's loss line for this token is in the effect panel under the tokens already
  return [pairLine, weightLine + hint];
}
