"""Keeping the cyclic garbage collector's full collections short in server processes."""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_frozen_with_tensorflow = False


def freeze_heap() -> None:
    """Collect, then move every object alive now out of the cyclic garbage collector's reach
    (``gc.freeze``). The modules, classes and functions a server process imports live as long
    as it does, yet each full collection walked all of them: ~800,000 objects once TensorFlow
    is in, a 0.2-0.5 s pause of every request the process was serving (measured: the tail of
    a burst's read latency). Objects made later are collected as usual. Called once the app
    has started, and once more after TensorFlow is imported (``freeze_after_tensorflow``)."""
    gc.collect()
    gc.freeze()


def freeze_after_tensorflow() -> None:
    """``freeze_heap`` the first time it is called with TensorFlow imported (the controller
    calls it after each job: a job imports TensorFlow in the process that runs it). The
    collection first frees the job's own garbage, so nothing it left is frozen."""
    global _frozen_with_tensorflow
    if _frozen_with_tensorflow or "tensorflow" not in sys.modules:
        return
    with _lock:
        if not _frozen_with_tensorflow:
            freeze_heap()
            _frozen_with_tensorflow = True
