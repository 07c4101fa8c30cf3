"""Atomic writes (a crash or Ctrl-C never leaves a half-written checkpoint behind) and weights-only state files.

Everything is written to a temporary file in the destination folder, flushed, then renamed over
the destination with ``os.replace`` (atomic on POSIX and Windows within one file system).
State files are written and read weights-only (:func:`load_state_file`): reading one never runs code from it.
:func:`save_state_file_verified` also returns the file's size and SHA-256 (for a checksum record beside it) after
reading it back from the disk.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shlex
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


def usual_mode(directory: bool = False) -> int:
    """The permission bits a plain ``open``/``mkdir`` gives under this process's umask (0644/0755 under 022)."""
    return (0o777 if directory else 0o666) & ~_UMASK


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new uniquely named folder in ``parent``, with the usual permissions.

    :func:`tempfile.mkdtemp` creates it with mode 0700 whatever the umask, so a folder renamed into place from it
    would stay unreadable for the group (on a shared cluster file system, for instance).
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, usual_mode(directory=True))
    return path


def atomic_save(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` and then atomically move ``tmp_path`` to ``path``.

    ``write`` receives a path with the same suffix as ``path`` (SB3's ``save`` appends ``.zip``
    when a suffix is missing, so the suffix is kept). If ``write`` raises, the destination is left
    untouched and the temporary file is removed.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f"{dest.suffix}.tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, usual_mode())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_save(path, lambda tmp: tmp.write_text(text))


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` atomically, in the weights-only format that :func:`load_state_file` reads."""
    state = to_weights_only(obj)
    return atomic_save(path, lambda tmp: torch.save(state, tmp))


# ---------------------------------------------------------------------------- weights-only state files
# Every state file of the project (QARL's resume.pt, GTF and NODE checkpoints, calibration replay buffers) is read
# with ``torch.load(weights_only=True)``: tensors, numbers, strings, bytes, None, and dicts, lists, tuples and sets of
# them; nothing in such a file can run code when read. NumPy arrays and scalars are stored as a tagged dict of their
# dtype, shape and raw bytes (a uint8 tensor) and come back bit for bit with their dtype.
_NUMPY_TAG = "__rldyn_numpy__"
_LEAVES = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.Size, torch.dtype, torch.device)
_CONVERT_SCRIPT = "scripts/convert_state_file.py"


class UnsafeStateFileError(ValueError):
    """A state file that cannot be read weights-only: an old-format checkpoint, or one crafted to run code."""


def to_weights_only(obj: Any, where: str = "state") -> Any:
    """``obj`` with every NumPy array and scalar replaced by a tagged dict that ``torch.load(weights_only=True)`` reads.

    Raises:
        TypeError: ``obj`` holds something a weights-only load refuses (a class instance, a deque, an object array);
            the message names where (``where`` is the name of ``obj`` in it).
    """
    if isinstance(obj, np.ndarray | np.generic):
        array = np.asarray(obj)
        if array.dtype.hasobject or array.dtype.fields is not None:
            raise TypeError(f"{where}: a NumPy array of dtype {array.dtype} cannot be stored weights-only")
        raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        data = torch.from_numpy(raw if raw.flags.writeable else raw.copy())
        kind = "scalar" if isinstance(obj, np.generic) else "array"
        return {_NUMPY_TAG: kind, "dtype": array.dtype.str, "shape": list(array.shape), "data": data}
    if type(obj) in (dict, OrderedDict):
        if _NUMPY_TAG in obj:
            raise TypeError(f"{where}: the key {_NUMPY_TAG!r} is reserved")
        return type(obj)((k, to_weights_only(v, f"{where}[{k!r}]")) for k, v in obj.items())
    if type(obj) in (list, tuple, set):
        return type(obj)(to_weights_only(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if type(obj) in _LEAVES or isinstance(obj, torch.Tensor):
        return obj
    raise TypeError(
        f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} cannot be stored weights-only; convert it to "
        "tensors, arrays, numbers, strings, lists, tuples or dicts in its state_dict()"
    )


def from_weights_only(obj: Any) -> Any:
    """Undo :func:`to_weights_only` (NumPy payloads come back on the CPU, writable)."""
    if type(obj) in (dict, OrderedDict):
        if _NUMPY_TAG in obj:
            array = obj["data"].cpu().numpy().view(np.dtype(obj["dtype"])).reshape(obj["shape"])
            return array[()] if obj[_NUMPY_TAG] == "scalar" else array
        return type(obj)((k, from_weights_only(v)) for k, v in obj.items())
    if type(obj) in (list, tuple, set):
        return type(obj)(from_weights_only(v) for v in obj)
    return obj


def torch_save_weights_only(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` of :func:`to_weights_only` of ``obj`` (not atomic: see :func:`atomic_torch_save`)."""
    torch.save(to_weights_only(obj), path)


class FileVerifyError(OSError):
    """A file read back after writing differs from the bytes that were written."""


CHUNK = 1 << 20  # bytes read at a time when hashing a file


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's data (or a folder's list of entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | os.PathLike[str], from_disk: bool = False) -> tuple[int, str]:
    """``(size in bytes, SHA-256 hex digest)`` of a file, read in 1 MiB chunks.

    Args:
        path: the file.
        from_disk: first drop the file's pages from the OS cache (``posix_fadvise``; only pages already on the disk
            are dropped, so call it after an fsync), so that the bytes are read from the disk, not from memory.
    """
    digest, size = hashlib.sha256(), 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        if from_disk and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while n := fh.readinto(buffer):
            digest.update(view[:n])
            size += n
    return size, digest.hexdigest()


class _HashingWriter:
    """A binary file that hashes and counts the bytes written through it."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        self.digest.update(data)
        n: int = self.fh.write(data)
        self.size += n
        return n

    def flush(self) -> None:
        self.fh.flush()


def save_state_file_verified(obj: Any, path: str | os.PathLike[str]) -> tuple[int, str]:
    """Write a state file as :func:`torch_save_weights_only` does, fsync it, read it back and compare.

    The SHA-256 of the bytes handed to the file is computed while they are written; after the fsync the file is read
    back from the disk (:func:`file_sha256` with ``from_disk``) and must give the same size and digest. Not atomic:
    write into a temporary folder or name (as :class:`rl.qarl.checkpoint.CheckpointManager` does).

    Returns:
        ``(size in bytes, SHA-256 hex digest)`` of the file: record them to check the file before reading it.

    Raises:
        FileVerifyError: the file read back differs from what was written.
    """
    state = to_weights_only(obj)
    with open(path, "wb") as fh:
        writer = _HashingWriter(fh)
        torch.save(state, writer)  # type: ignore[arg-type]
    fsync_path(path)
    written = (writer.size, writer.digest.hexdigest())
    read = file_sha256(path, from_disk=True)
    if read != written:
        raise FileVerifyError(
            f"{str(path)!r} read back after writing is {read[0]} bytes with SHA-256 {read[1][:16]}..., not the "
            f"{written[0]} bytes with SHA-256 {written[1][:16]}... that were written"
        )
    return written


def load_state_file(
    path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu", trusted: bool = False
) -> Any:
    """Read a state file written by :func:`atomic_torch_save` with ``torch.load(weights_only=True)``.

    Args:
        path: the file.
        map_location: where its tensors go (NumPy payloads always come back on the CPU).
        trusted: if the file is not weights-only (an old-format checkpoint), unpickle it anyway. Unpickling runs
            whatever code the file names: only for files from a trusted source.

    Raises:
        UnsafeStateFileError: the file is not weights-only (and ``trusted`` is false); the message says how to
            convert it.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not trusted:
            raise UnsafeStateFileError(
                f"{str(path)!r} is not a weights-only state file, so reading it could run code stored in it. It was "
                "probably written by an older rldyn (NumPy arrays pickled as objects). If you trust where it came "
                f"from, convert it once with: python {_CONVERT_SCRIPT} --trust {shlex.quote(str(path))}"
            ) from e
        state = torch.load(path, map_location=map_location, weights_only=False)
    return from_weights_only(state)


def convert_state_file(path: str | os.PathLike[str]) -> bool:
    """Rewrite a trusted old-format state file in the weights-only format, in place; ``False`` if it already was.

    Unpickles the file (running any code it names): call it only on files from a trusted source.
    """
    file = Path(path)
    try:
        torch.load(file, map_location="cpu", weights_only=True)
        return False
    except pickle.UnpicklingError:
        pass
    atomic_torch_save(torch.load(file, map_location="cpu", weights_only=False), file)
    return True
