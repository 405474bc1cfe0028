"""Deterministic binary payload shared by the test apps (file downloads) and the tests."""

import atexit
import os
import tempfile

SAMPLE = bytes((i * 7 + i // 251) % 256 for i in range(600_003))  # every byte value, odd size, past two read blocks (FILE_BLOCK)
_path = None


def sample_path() -> str:
    """Path of a temp file holding SAMPLE, written once per process and removed at exit."""
    global _path
    if _path is None:
        fd, _path = tempfile.mkstemp(prefix="sample-", suffix=".bin")
        with os.fdopen(fd, "wb") as f:
            f.write(SAMPLE)
        atexit.register(os.unlink, _path)
    return _path
