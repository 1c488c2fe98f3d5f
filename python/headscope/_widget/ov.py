"""What the selected head writes, in the widget: its OV circuit for the key token the view has
locked, its direct logit attribution at that position, and the copying score in the score picker
(docs/ov.md, docs/wire.md "OV and direct logit attribution")."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dla import attribute
from .._ov import ov_top_tokens
from .messages import _short_id, error_text

#: Tokens in each of the OV panel's lists.
OV_K = 10
#: At most this many typed tokens per DLA request.
_MAX_TOKENS = 4
#: A typed token longer than this is refused before it reaches the tokenizer.
_MAX_TOKEN_CHARS = 200


class OVViews:
    """Mixed into :class:`AttentionWidget` before its message handling (a ``Messages``), whose
    ``_on_message`` looks handlers up in ``self._HANDLERS``."""

    _copying: np.ndarray | None = None

    def _init_ov(self: Any) -> None:
        """Say whether the weights can be read, and offer the copying score if they can."""
        model = getattr(self, "_model", None)
        if model is None:
            reason = "precomputed attention: there is no model, so no weights to read"
        else:
            try:
                reason = model.weights_unavailable() or ""
            except Exception as exc:  # an adapter that cannot even say: unavailable, with why
                reason = error_text(exc)
        self.ov_unavailable = reason
        if not reason and "copying" not in self.score_names:
            self.score_names = [*self.score_names, "copying"]

    def _weight_scores(self: Any) -> dict[str, np.ndarray]:
        """``{"copying": [layer, head]}``, computed once per widget (it depends on the weights
        only), or ``{}`` without readable weights."""
        if self.ov_unavailable or getattr(self, "_model", None) is None:
            return {}
        if self._copying is None:
            from .._ov import copying_scores

            self._copying = copying_scores(self._model)
        return {"copying": self._copying}

    def _position(self: Any, content: dict[str, Any], run: Any) -> int:
        position = content.get("position")
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < run.seq_len:
            raise ValueError(f"position must be a token position 0-{run.seq_len - 1}, got {position!r}")
        return position

    def _ov_request(self: Any, content: dict[str, Any], kind: str) -> tuple[Any, Any, int, int, int] | None:
        """The checked parts of a request, or ``None`` after an error reply."""
        request_id = _short_id(content.get("request_id"))
        if request_id is None:
            self.send({"type": f"{kind}_error", "request_id": None, "message": "request_id must be a short string or an int"})
            return None
        try:
            if self.ov_unavailable:
                raise TypeError(f"no weights: {self.ov_unavailable}")
            from .._run import check_head

            layer, head = check_head(content.get("layer"), content.get("head"), self.n_layers, self.n_heads)
            run = self._unpark()
            if run.token_ids is None:
                raise TypeError("this run has no token ids")
            return request_id, run, layer, head, self._position(content, run)
        except Exception as exc:
            self.send({"type": f"{kind}_error", "request_id": request_id, "message": error_text(exc)})
            return None

    def _on_request_ov(self: Any, content: dict[str, Any]) -> None:
        """The OV circuit of a head for the token at ``position`` (docs/wire.md)."""
        checked = self._ov_request(content, "ov")
        if checked is None:
            return
        request_id, run, layer, head, position = checked
        try:
            result = ov_top_tokens(self._model, layer, head, int(run.token_ids[position]), OV_K)
        except Exception as exc:
            self.send({"type": "ov_error", "request_id": request_id, "message": error_text(exc)})
            return
        self.send({
            "type": "ov", "request_id": request_id, "run_id": self.run_id, "layer": layer, "head": head,
            "position": position, "token": result.token,
            "raised": [[s, v] for s, v in result.raised], "lowered": [[s, v] for s, v in result.lowered],
        })

    def _on_request_dla(self: Any, content: dict[str, Any]) -> None:
        """Direct logit attribution at ``position`` for the predicted and the typed tokens."""
        checked = self._ov_request(content, "dla")
        if checked is None:
            return
        request_id, run, layer, head, position = checked
        tokens = content.get("tokens") or []
        try:
            if not isinstance(tokens, list) or len(tokens) > _MAX_TOKENS or not all(
                isinstance(t, str) and len(t) <= _MAX_TOKEN_CHARS for t in tokens
            ):
                raise ValueError(f"tokens must be a list of at most {_MAX_TOKENS} short strings")
            result = attribute(self._model, run.token_ids, position, tokens)
        except Exception as exc:  # a bad typed token: shown next to the input
            self.send({"type": "dla_error", "request_id": request_id, "message": error_text(exc), "field": "token" if tokens else None})
            return
        values = result.values  # [target, layer, head]
        flat = values.reshape(len(result.targets), -1)
        mine = values[:, layer, head]
        entries = [
            {
                "token": name,
                "value": float(mine[i]),
                # 1 + the number of heads with a larger contribution to this logit
                "rank": int((flat[i] > mine[i]).sum()) + 1,
                "logit": float(result.logits[i]),
            }
            for i, name in enumerate(result.targets)
        ]
        self.send({
            "type": "dla", "request_id": request_id, "run_id": self.run_id, "layer": layer, "head": head,
            "position": position, "n_heads": int(flat.shape[1]), "norm": result.norm, "entries": entries,
        })

    @property
    def _HANDLERS(self) -> dict[str, Any]:  # noqa: N802 (the name Messages looks up)
        """The handlers of the classes after this one in the widget's MRO, plus the OV requests
        (read on each message, so that handlers other mixins add are kept)."""
        return {**super()._HANDLERS, "request_ov": OVViews._on_request_ov, "request_dla": OVViews._on_request_dla}  # type: ignore[misc]
