"""How many characters a producer's prompt may have, and how many of its tokens the model's text encoder reads."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import assert_never

from audiox_core.errors import ModelError
from audiox_core.model.config import TextConditionerConfig

# About 4 characters a T5 token in English: 1000 characters is about twice what the official
# encoder reads (128 tokens), room for any real prompt, and far from a pasted 100 kB document.
MAX_PROMPT_CHARS = 1000


def prompt_tokens(text: TextConditionerConfig, prompts: Sequence[str], t5_dir: Path | None) -> list[int]:
    """Each prompt's length in the encoder's tokens, end token included, before it is cut to
    ``max_length``: UTF-8 bytes + 1 for ``byte-t5`` (``conditioners._byte_t5``), its words for
    ``words`` (``conditioners.words``: no end token), the T5 tokenizer's ids for ``t5`` (read from
    ``t5_dir``; the loader's ModelError where it cannot be)."""
    match text.kind:
        case "byte-t5":
            return [len(p.encode("utf-8")) + 1 for p in prompts]
        case "words":
            from audiox_core.model.conditioners import words

            return [len(words(p)) for p in prompts]
        case "t5":
            from transformers import AutoTokenizer

            from audiox_core.model.conditioners import require_t5_dir

            folder = require_t5_dir(text, t5_dir)
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError) as e:
                raise ModelError(f"{folder}: cannot load the T5 tokenizer ({e})") from e
            return [len(ids) for ids in tokenizer(list(prompts))["input_ids"]]
        case _:
            assert_never(text.kind)
