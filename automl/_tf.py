"""Import TensorFlow without its start-up chatter on the terminal.

TensorFlow 2.21 prints absl INFO lines (oneDNN notice, missing CUDA driver) from C++ before any
log-level setting applies. The CLI imports it through ``quiet_import`` which parks file
descriptor 2 in a temporary file during the import and device probe, and replays what was
written only if the import fails — so a real error is never hidden.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any


def quiet_import() -> Any:
    """Import keras (and TensorFlow), probe devices, and return the keras module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return keras
