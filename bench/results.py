"""bench/RESULTS.md holds one `## <Stage>` section per benchmark; each script rewrites only its own."""
from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record_section(title: str, body: str, path: Path = RESULTS, quick: bool = False) -> None:
    """Replace (or append) the `## <title>` section with `body`, re-reading the file right before writing.

    A --quick run goes to `## <title> (quick)`: its smaller workload must not overwrite the real results."""
    title = f"{title} (quick)" if quick else title
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
