"""Language-model packages (task text-generation, schema 1.2's `generation` block): text in,
streamed text out, with the KV cache (generation.py); chat messages through the package's chat
template; and the replay of the recorded sample generation, token for token."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .errors import InvalidPackageError, SampleMismatchError, UnsupportedPackageError
from .generation import Decoder, generate_ids, greedy
from .manifest import parse_json
from .text import ChatTemplate, check_text, load_tokenizer, special_tokens

Prompt = str | Sequence[Mapping[str, Any]]  # a text, or chat messages [{"role", "content"}]


class LanguageModel:
    """A package's decoder, tokenizer and generation settings."""

    def __init__(self, manifest: Mapping[str, Any], session: Any, files: Mapping[str, bytes]):
        spec = manifest.get("generation")
        if not isinstance(spec, Mapping):
            raise UnsupportedPackageError(
                f"{manifest.get('name')}: not a language-model package (no generation block)"
            )
        self.spec = spec
        self.files = files
        self.decoder = Decoder(session)
        self.stop_ids = [int(i) for i in spec.get("eos_token_ids") or []]
        self.context_length = spec.get("context_length")
        self.defaults = dict(spec.get("defaults") or {})
        # Stop strings the model's generation config names (generation ends before them).
        self.stop_strings = [s for s in spec.get("stop_strings") or [] if isinstance(s, str)]
        self._tokenizer = None
        self._chat = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            path = self.spec.get("tokenizer", "tokenizer.json")
            self._tokenizer = load_tokenizer(self.files, path, "generation.tokenizer")
        return self._tokenizer

    @property
    def chat_template(self) -> ChatTemplate:
        """The package's chat template (generation.chat_template names its file)."""
        if self._chat is None:
            path = self.spec.get("chat_template")
            if not isinstance(path, str):
                raise UnsupportedPackageError(
                    "this package has no chat template (generation.chat_template): "
                    "give a plain prompt"
                )
            if path not in self.files:
                raise InvalidPackageError(
                    f"manifest.json: generation.chat_template {path!r} not found"
                )
            self._chat = ChatTemplate(self.files[path].decode("utf-8"), special_tokens(self.files))
        return self._chat

    def encode(self, prompt: str) -> list[int]:
        """A plain prompt's ids, with the special tokens the tokenizer adds (a BOS, say)."""
        return list(self.tokenizer.encode(check_text(prompt, "prompt")).ids)

    def prompt_ids(self, prompt: Prompt, chat: bool = False) -> list[int]:
        """The ids generation starts from: a plain prompt encoded, or chat messages (a string
        with chat=True is one user message) rendered by the chat template with the assistant's
        turn opened, then encoded as it is (the template writes any special tokens itself)."""
        if isinstance(prompt, str) and not chat:
            return self.encode(prompt)
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        text = self.chat_template.render(messages, add_generation_prompt=True)
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def generate_ids(self, prompt_ids: Sequence[int], **options: Any) -> Iterator[int]:
        settings = {
            k: self.defaults[k] for k in ("temperature", "top_k", "top_p") if k in self.defaults
        }
        settings.update({k: v for k, v in options.items() if v is not None})
        n = settings.pop("max_new_tokens", self.defaults.get("max_new_tokens", 64))
        return generate_ids(
            self.decoder,
            prompt_ids,
            int(n),
            stop_ids=self.stop_ids,
            max_length=self.context_length,
            **settings,
        )

    def stream(
        self,
        prompt: Prompt,
        stop: Sequence[str] = (),
        chat: bool = False,
        on_token: Callable[[int], None] | None = None,
        **options: Any,
    ) -> Iterator[str]:
        """Text pieces as tokens arrive: each piece is the decoded text's new suffix (a piece is
        held back while it ends in an incomplete UTF-8 sequence); ends at an EOS id or before a
        stop string (the package's generation.stop_strings and `stop`). `on_token` sees each
        generated id as it comes."""
        tok = self.tokenizer
        stop = [*self.stop_strings, *stop]
        ids: list[int] = []
        shown = ""
        for token in self.generate_ids(self.prompt_ids(prompt, chat), **options):
            ids.append(token)
            if on_token is not None:
                on_token(token)
            text = tok.decode(ids)
            if text.endswith("\ufffd"):
                continue
            cut = _stop_at(text, stop)
            if cut is not None:
                if cut > len(shown):
                    yield text[len(shown) : cut]
                return
            if len(text) > len(shown) and text.startswith(shown):
                yield text[len(shown) :]
            shown = text

    def replay(self) -> dict[str, Any]:
        """Greedy-decode each recorded prompt and compare with the recorded ids."""
        path = self.spec.get("sample")
        if not path or path not in self.files:
            raise InvalidPackageError(
                "manifest.json: generation.sample names no file of this package"
            )
        sample = parse_json(self.files[path], path)
        tokens = 0
        stops = self.stop_ids if sample.get("stops_at_eos", True) else []
        for i, (prompt, want) in enumerate(
            zip(sample["prompt_ids"], sample["generated_ids"], strict=True)
        ):
            got = greedy(self.decoder, prompt, int(sample["max_new_tokens"]), stops)
            if got != list(want):
                first = next(
                    (j for j, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                    min(len(got), len(want)),
                )
                raise SampleMismatchError(
                    f"generation sample {i}: greedy decoding differs from the recorded tokens at "
                    f"position {first} (got {got[first : first + 3]}, recorded {list(want)[first : first + 3]})"
                )
            tokens += len(got)
        return {"prompts": len(sample["prompt_ids"]), "tokens": tokens}


def _stop_at(text: str, stop: Sequence[str]) -> int | None:
    hits = [text.find(s) for s in stop if s and s in text]
    return min(hits) if hits else None
