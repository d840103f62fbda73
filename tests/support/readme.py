"""README.md read as a user reads it: a section under its heading, and the shell blocks in it."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section(heading: str, text: str | None = None) -> str:
    """The text under `heading` (a whole line), up to the next heading of the same level or higher;
    in README.md, or in `text` (a section already cut out). Lines in fenced code blocks (a shell
    comment starts with `# ` too) are never headings."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines(keepends=True)
    level = len(heading) - len(heading.lstrip("#"))
    start, in_code = None, False
    for number, line in enumerate(lines):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and start is None and line.rstrip() == heading:
            start = number + 1
        elif not in_code and start is not None and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[start:number])
    assert start is not None, f"README.md has no heading {heading!r}"
    return "".join(lines[start:])


def shell_blocks(section: str) -> list[str]:
    """The ```sh blocks of a section, continuation lines joined."""
    return [block.replace("\\\n", " ") for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)]
