"""Write runtimes/manifest.schema.json from the one definition, edgepack_runtime.schema.

python scripts/write_manifest_schema.py          # rewrite the file
python scripts/write_manifest_schema.py --check  # exit 1 if the committed file drifted
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from edgepack_runtime.schema import schema_json

TARGET = Path(__file__).resolve().parent.parent / "runtimes" / "manifest.schema.json"


def main(argv: list[str]) -> int:
    text = schema_json()
    if "--check" in argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python scripts/write_manifest_schema.py")
            return 1
        print(f"{TARGET} is up to date")
        return 0
    tmp = TARGET.with_name(f".{TARGET.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, TARGET)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
