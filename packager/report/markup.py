"""Text escaped for where edgepack publishes it: Markdown (the model card, report.md), HTML
(report.html) and YAML front matter. Names come from recipes, data files, teachers' model cards
and models: a file called ``x`<b>y</b>`` must stay text in all of them (docs/guarantees.md).

- `code`: a CommonMark code span no content can close: its backtick fence is longer than any
  run of backticks inside (HTML inside a code span is shown, never run);
- `md`: prose, with HTML's `& < >` as entities and Markdown's punctuation backslash-escaped;
- `html`: HTML text and attribute values (`& < > " '` as entities);
- `yaml_dump`: front matter whose every string that is not plain ASCII text is one
  double-quoted line with markup and control characters escaped (no value can end the front
  matter or be read as HTML by a renderer that shows it as text);
and all of them show control characters and bidi overrides escaped (edgepack_runtime's
`printable`), so no published text can steer a terminal that prints it.
"""

from __future__ import annotations

import html as _html
import json
import re
import secrets
from typing import Any

import yaml

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def _printable(text: Any) -> str:
    from packager.edge_runtime import load_runtime

    return load_runtime().text.printable(str(text))


def code(text: Any) -> str:
    """`text` as a Markdown code span that no backtick in it can close."""
    body = _printable(text)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space each side: pad when the body starts or ends with a backtick
    # (or would lose its own outer spaces).
    pad = " " if body[:1] in ("`", " ") or body[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def md(text: Any) -> str:
    """`text` as inert Markdown prose: no link, emphasis, heading, table cell or raw HTML."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _html.escape(_printable(text), quote=False))


def html(text: Any) -> str:
    """`text` as HTML text or a quoted attribute value."""
    return _html.escape(_printable(text), quote=True)


# Characters a front matter value may hold as they are: anything else (a line break, a control
# character, non-ASCII, markup: < > & ` and quotes) makes the value one escaped JSON-style
# double-quoted scalar, which YAML reads back as the same string.
_PLAIN = re.compile(r"[A-Za-z0-9 _.,:;/+=@%()\[\]{}#!?*~^$-]*")
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "`": "\\u0060", "'": "\\u0027"}


def yaml_dump(data: Any) -> str:
    """YAML for front matter: the same values, but every string that is not plain ASCII text
    one double-quoted line with its risky characters escaped (`"x\\u0060\\u003cb\\u003e"`,
    `"a\\n---\\nb"`): no value can end the front matter, and a renderer that shows it as text
    meets no markup."""
    risky: dict[str, str] = {}
    nonce = secrets.token_hex(8)  # a plain value cannot guess it, so none is taken for a token

    def mark(value: Any) -> Any:
        if isinstance(value, str) and not _PLAIN.fullmatch(value):
            token = f"EDGEPACKRISKY{len(risky)}X{nonce}"
            quoted = json.dumps(value)  # \\n, \\u001b, \\u202e: ASCII, one line
            risky[token] = re.sub(r"[<>&`']", lambda m: _ESCAPES[m.group()], quoted)
            return token
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [mark(v) for v in value]
        return value

    text = yaml.safe_dump(mark(data), sort_keys=False, allow_unicode=False, width=1 << 16)
    return re.sub(rf"EDGEPACKRISKY\d+X{nonce}", lambda m: risky[m.group()], text)
