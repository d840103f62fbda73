"""After a large piece of work the process gives its freed heap back (glibc's malloc_trim)."""

from __future__ import annotations

from pathlib import Path

from shared.core.memory import release_freed_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_freed_heap_pages_go_back_to_the_system() -> None:
    # 1 KiB objects come from malloc's heap (not Python's small-object arenas); keeping one in 64
    # leaves the heap's top in use, so without a trim the freed pages stay with the process
    objects = [bytes(1024) for _ in range(120_000)]
    kept = objects[::64]
    del objects
    before = _rss_mb()
    assert release_freed_memory()
    assert _rss_mb() < before - 60
    assert len(kept) == 1875
