"""Server processes keep the cyclic garbage collector's full collections short (api.heap)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# each case runs in a fresh interpreter: gc.freeze() is process-wide and cannot be undone
# for objects already frozen
CASES = {
    "startup": """
import gc
from api.heap import freeze_heap
freeze_heap()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()  # what the imports made
assert len(gc.get_objects()) < 100, len(gc.get_objects())  # a full collection walks these only
""",
    "tensorflow": """
import gc, sys
from api.heap import freeze_after_tensorflow
freeze_after_tensorflow()
assert gc.get_freeze_count() == 0  # no TensorFlow in this process yet: nothing frozen
import tensorflow  # noqa: F401
freeze_after_tensorflow()
first = gc.get_freeze_count()
assert first > 100_000, first  # TensorFlow's objects are out of the collector's reach
garbage = [[] for _ in range(1000)]
freeze_after_tensorflow()  # once only: later objects stay collectable
assert gc.get_freeze_count() == first
""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_heap_is_frozen_once_at_each_point(case: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CASES[case]], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
