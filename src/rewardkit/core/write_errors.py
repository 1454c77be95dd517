"""A failed write is one line naming the path: OS and library errors at a write site become a DataError.

A full disk surfaces from safetensors as `SafetensorError: Error while serializing: IoError(Os { code: 28, ...
})` and from torch as a `RuntimeError` from PytorchStreamWriter, both without the file; a folder turned read-only
as a `PermissionError` deep in TRL's checkpoint code. The write site knows what it was writing: `writing(...)`
names it, with the reason and the fix, and leaves every other error alone.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rewardkit.core.errors import DataError, RewardkitError

# safetensors' wording of an OS error: "I/O error: File too large (os error 27)", or older "IoError(Os { code: 28,
# kind: StorageFull, message: \"No space left on device\" })"
_OS_MESSAGES = (re.compile(r"I/O error: (.+?) \(os error (\d+)\)"), re.compile(r'message: \\?"([^"\\]+)'))
_TORCH_WRITE = ("PytorchStreamWriter", "file write failed", "unexpected pos")


def _hint(code: int | None) -> str:
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return "free disk space (df -h shows it), then continue with `rewardkit train CONFIG --resume`."
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "make the folder writable again (permissions, a read-only mount), then `--resume`."
    return "check the disk and the folder, then continue with `rewardkit train CONFIG --resume`."


def _library_reason(exc: Exception) -> tuple[str, int | None] | None:
    """(reason, errno) of a write error a library reported without raising OSError, else None."""
    text = " ".join(str(exc).split())
    if type(exc).__name__ == "SafetensorError":
        for pattern in _OS_MESSAGES:
            found = pattern.search(text)
            if found:
                code = re.search(r"os error (\d+)|code: (\d+)", text)
                return found.group(1), (int(code.group(1) or code.group(2)) if code else None)
        return text[:200], None
    if isinstance(exc, RuntimeError) and any(marker in text for marker in _TORCH_WRITE):
        return text[:200], None
    return None


@contextmanager
def writing(target: str | Path, what: str) -> Iterator[None]:
    """Run a block that writes `target` (a file or folder); its OS or library write errors become one DataError
    naming the path (the OSError's own file when it has one), the reason and the fix."""
    try:
        yield
    except RewardkitError:
        raise
    except OSError as exc:
        path = exc.filename if exc.filename is not None else target
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise DataError(f"{what}: writing {path} failed: {reason}.", hint=_hint(exc.errno)) from None
    except Exception as exc:
        found = _library_reason(exc)
        if found is None:
            raise
        raise DataError(f"{what}: writing {target} failed: {found[0]}.", hint=_hint(found[1])) from None
