"""Generate, then inspect: the widget appends tokens its model picks and shows the whole sequence."""

from __future__ import annotations

from typing import Any

from .._adapters import run_token_ids
from .._generate import check_generate_args, generate_ids
from .interventions import Interventions


class Generation(Interventions):
    """``w.generate`` and the browser's ``generate`` request (docs/wire.md)."""

    def generate(self, max_new_tokens: int = 20, *, temperature: float = 0.0, seed: int | None = None) -> None:
        """Append ``max_new_tokens`` tokens the model picks to the current run and show the
        whole sequence: every head's pattern over prompt and generated tokens together.

        ``temperature=0`` (the default) picks the most likely token at each step (greedy, the
        same tokens every time); above 0 it samples from ``softmax(logits / temperature)`` with
        a generator seeded by ``seed`` (``None``: a fresh random seed). The new run is built
        from the token ids (never from decoded text); the token view marks the generated tokens
        (``generated_from``), and calling ``generate`` again appends more. Running a prompt
        clears them. The prompt box and the history keep the prompt as typed.

        Generation does not stop at an end-of-text token, and it refuses (``ValueError``, the
        widget shows it; nothing changes) when the sequence would pass the model's context:
        the message says how many tokens still fit. Bad arguments raise ``TypeError`` or
        ``ValueError`` naming the argument. An ablation does not change what is generated (the
        clean model picks the tokens); it is computed on the new run as on any run.
        """
        with self._lock:
            model = self._need_model("generation")

            def work() -> tuple[Any, int]:
                count, temp, chosen_seed = check_generate_args(max_new_tokens, temperature, seed)
                run = self._unpark()
                if run.token_ids is None:  # a run from a model always has its ids
                    raise TypeError("this run has no token ids to generate from")
                start = self.generated_from if 0 <= self.generated_from <= run.seq_len else run.seq_len
                ids = generate_ids(model, run.token_ids, count, temperature=temp, seed=chosen_seed)
                return run_token_ids(model, ids, prompt=run.prompt, memory_budget=self._memory_budget), start

            new_run, start = self._guarded(work)
            added = new_run.seq_len - start
            how = "greedy" if temperature == 0 else f"sampled at temperature {float(temperature):g}, seed {seed}"
            note = f"{added} generated token{'s' if added != 1 else ''} after the prompt ({how})"
            self._apply(new_run, note=note, generated_from=start)  # type: ignore[attr-defined]

    def _bos_first(self, run: Any) -> bool:
        """Whether the run's first token is the BOS its model prepends (docs/wire.md, ``bos_first``)."""
        model = getattr(self, "_model", None)
        if model is None or run.token_ids is None or run.token_ids.numel() == 0:
            return False
        if not hasattr(self, "_bos_id"):
            try:
                self._bos_id = model.bos_id()
            except Exception:  # a tokenizer that cannot encode "" adds nothing we can name
                self._bos_id = None
        return self._bos_id is not None and int(run.token_ids[0]) == self._bos_id

    def _on_generate(self, content: dict[str, Any]) -> None:
        """``{"type": "generate", "max_new_tokens": 20, "temperature": 0, "seed": null}``."""
        count = content.get("max_new_tokens", 20)
        if isinstance(count, float) and count.is_integer():  # JSON may send 20.0
            count = int(count)
        if isinstance(count, str):
            raise TypeError(f"max_new_tokens must be a whole number, got the text {count[:20]!r}")
        self.generate(count, temperature=content.get("temperature", 0.0), seed=content.get("seed"))

    _HANDLERS: dict[str, Any] = {**Interventions._HANDLERS, "generate": _on_generate}
