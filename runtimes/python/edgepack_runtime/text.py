"""Text in, for every text package: the checks each runtime makes on a string, the package's
tokenizer (`tokenizer.json` through the `tokenizers` library, the `text` extra) and chat
templates (Jinja through `jinja2`, rendered as transformers renders them).

The rule every runtime applies (docs/runtimes.md, "Text and chat"): a text is Unicode (UTF-8
bytes in C++) without NUL; it is encoded with the tokenizer's special tokens; truncation to
`max_length` drops the text's last tokens and keeps the special tokens; a batch pads to its
longest text (or to the model's fixed sequence length) with `pad_id`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError, InvalidPackageError, UnsupportedPackageError


def check_text(text: Any, where: str = "text") -> str:
    """`text` if it is a string every runtime can take, else InputError: not a string, not
    valid Unicode (a lone surrogate: no UTF-8 encodes it), or holding NUL (a C string ends
    there). Positions are UTF-8 byte offsets, as the C++ and Node runtimes report them."""
    if not isinstance(text, str):
        raise InputError(f"{where}: expected a string, got {type(text).__name__}")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        at = len(text[: exc.start].encode("utf-8", "surrogatepass"))
        raise InputError(f"{where}: not valid UTF-8 at byte {at}: pass Unicode text") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(f"{where}: contains NUL (U+0000) at byte {nul}: remove it")
    return text


def decode_utf8(data: bytes, where: str = "text") -> str:
    """UTF-8 bytes (a file's, an app's buffer) as a checked string; InputError naming the byte
    offset of the first invalid sequence, the wording C++ and Node use for the same bytes."""
    try:
        return check_text(data.decode("utf-8"), where)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{where}: not valid UTF-8 at byte {exc.start}: pass Unicode text"
        ) from None


def load_tokenizer(files: Mapping[str, bytes], path: str, where: str):
    """The package file `path` as a tokenizers.Tokenizer with no padding and no truncation (the
    caller sets what the manifest says). `where` names the manifest field in errors."""
    try:
        from tokenizers import Tokenizer  # lazy: only text packages pay for the import
    except ImportError as exc:
        raise UnsupportedPackageError(
            "text needs the tokenizers package: pip install 'edgepack-runtime[text]'"
        ) from exc
    if path not in files:
        raise InvalidPackageError(f"manifest.json: {where} {path!r} not found")
    try:
        tokenizer = Tokenizer.from_str(files[path].decode("utf-8"))
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise InvalidPackageError(f"{path}: not a valid tokenizer ({exc})") from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def special_tokens(files: Mapping[str, bytes]) -> dict[str, str]:
    """bos_token, eos_token, ... as strings from tokenizer_config.json (a chat template may
    name them); empty when the package has no such file."""
    raw = files.get("tokenizer_config.json")
    if raw is None:
        return {}
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise InvalidPackageError(f"tokenizer_config.json: not valid JSON ({exc})") from exc
    out = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = config.get(key) if isinstance(config, dict) else None
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            out[key] = value
    return out


class ChatTemplate:
    """A package's chat template (Jinja), rendered as transformers' apply_chat_template does:
    a sandbox, trim_blocks and lstrip_blocks, `raise_exception`, `tojson` keeping non-ASCII,
    and the tokenizer's special tokens as variables."""

    def __init__(self, source: str, tokens: Mapping[str, str]) -> None:
        try:
            from jinja2 import TemplateError
            from jinja2.ext import loopcontrols
            from jinja2.sandbox import ImmutableSandboxedEnvironment
        except ImportError as exc:
            raise UnsupportedPackageError(
                "chat templates need jinja2: pip install 'edgepack-runtime[text]'"
            ) from exc

        def raise_exception(message: str) -> None:
            raise InputError(f"chat template: {message}")

        def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
            return json.dumps(
                value,
                ensure_ascii=ensure_ascii,
                indent=indent,
                separators=separators,
                sort_keys=sort_keys,
            )

        def strftime_now(fmt: str) -> str:
            from datetime import datetime

            return datetime.now().strftime(fmt)

        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
        )
        env.filters["tojson"] = tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = strftime_now
        try:
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise InvalidPackageError(f"chat template: not valid Jinja ({exc})") from exc
        self._error = TemplateError
        self.tokens = dict(tokens)

    def render(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True):
        """The prompt text for `messages` ([{"role", "content"}, ...])."""
        check_messages(messages)
        try:
            return self._template.render(
                messages=list(messages), add_generation_prompt=add_generation_prompt, **self.tokens
            )
        except self._error as exc:
            raise InputError(f"chat template: {exc}") from exc


def check_messages(messages: Any) -> None:
    """A chat is a non-empty list of {"role": str, "content": str} with checked text."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InputError('a chat is a non-empty list of {"role": ..., "content": ...} messages')
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise InputError(f'message {i}: expected {{"role": str, "content": str}}')
        check_text(m.get("content"), f"message {i} content")
