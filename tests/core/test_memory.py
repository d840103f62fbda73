"""After a large piece of work the process gives its freed heap back (glibc's malloc_trim), and its threads
share a few malloc arenas (glibc's mallopt M_ARENA_MAX)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.core.memory import MALLOC_ARENAS, release_freed_memory


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


# Threads allocating at once each get an arena of their own unless the limit holds; the count of
# arenas is what malloc_info reports as <heap nr=...> entries.
_ARENAS_AFTER_THREADS = """
import ctypes, sys, threading
from shared.core.memory import limit_malloc_arenas
if sys.argv[1] == "limited":
    assert limit_malloc_arenas()
barrier = threading.Barrier(8)
def allocate():
    barrier.wait()
    kept = [bytearray(4096) for _ in range(2000)]
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.open_memstream.restype = ctypes.c_void_p
buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(buffer.value.decode().count("<heap nr="))
"""


def _arenas(mode: str) -> int:
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    return int(subprocess.run([sys.executable, "-c", _ARENAS_AFTER_THREADS, mode], env=env, check=True,
                              capture_output=True, text=True).stdout)


def test_threads_share_at_most_the_limit_of_malloc_arenas() -> None:
    assert _arenas("default") > MALLOC_ARENAS  # the test can tell: unlimited, threads get arenas of their own
    assert _arenas("limited") <= MALLOC_ARENAS
