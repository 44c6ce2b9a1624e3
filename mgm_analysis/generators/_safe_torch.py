"""Checks on a ``torch.save`` file before ``torch.load`` allocates anything.

``torch.load`` allocates every tensor storage at the size the file's header
claims, before it reads a byte of data: a 2 KB file can ask for 400 TB. And it
never checks the zip entries' CRC-32, so a flipped byte inside a tensor loads
silently. :func:`check_torch_file` reads only the file's structure:

* zip format (``torch.save``'s default): the central directory (every entry
  stored uncompressed and inside the file), the CRC-32 of every entry (read in
  1 MB chunks), and ``data.pkl`` through :class:`_StorageRecorder`, an
  unpickler that builds nothing real and only records the storages it names;
  each storage's claimed ``numel × itemsize`` must fit in its ``data/<key>`` entry.
* legacy format (``_use_new_zipfile_serialization=False``, which NVIDIA's
  network pickles embed for every tensor): the five leading pickles are read
  the same way, then the data area is walked storage by storage (an 8-byte
  element count, then the bytes), without reading the data.

A network pickle itself can claim, in a length prefix, more bytes than it
holds, and the C unpickler allocates that length before reading:
:func:`check_pickle_lengths` walks its opcodes first (``pickletools``, which
builds nothing) through a reader that never asks for more than the file holds.

All raise :class:`CheckpointError` with one line naming the entry and sizes.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import warnings
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError

__all__ = ["check_torch_file", "check_pickle_lengths", "LEGACY_MAGIC"]

#: the first pickle of a legacy torch.save file (protocol 2, the magic number 0x1950a86a20f9469cfc6c)
LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


def _storage_itemsizes() -> dict[str, int]:
    """{'FloatStorage': 4, ..., 'UntypedStorage': 1} from torch itself."""
    out = {"UntypedStorage": 1}
    with warnings.catch_warnings():  # touching the legacy storage classes warns that TypedStorage is deprecated
        warnings.simplefilter("ignore")
        out.update(_typed_itemsizes())
    return out


def _typed_itemsizes() -> dict[str, int]:
    out = {}
    for name in dir(torch):
        cls = getattr(torch, name)
        if name.endswith("Storage") and isinstance(cls, type) and name != "UntypedStorage":
            try:
                out[name] = torch._utils._element_size(cls.dtype)
            except Exception:  # TypedStorage and other abstract bases have no dtype
                continue
    return out


_ITEMSIZE = _storage_itemsizes()


class _Inert:
    """Anything a pickle builds while its storages are recorded: accepts every call and keeps nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _StorageType:
    def __init__(self, module: str, name: str):
        self.name = f"{module}.{name}"
        self.itemsize = _ITEMSIZE.get(name) if module == "torch" else None


class _StorageRecorder(pickle.Unpickler):
    """Reads a torch pickle and records ``(key, storage type, numel)`` of every storage; runs nothing.

    Every global becomes an inert stand-in (a fresh class, so ``NEWOBJ`` works),
    so no name in the file is ever imported or called.
    """

    def __init__(self, file, where: str):
        super().__init__(file)
        self.where = where
        self.storages: dict[str, tuple[_StorageType, int]] = {}

    def find_class(self, module, name):
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(module, name)
        return type("Inert", (_Inert,), {})

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise CheckpointError(f"{self.where}: unexpected persistent id in a torch file ({str(pid)[:60]})")
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(stype, _StorageType) or stype.itemsize is None:
            raise CheckpointError(f"{self.where}: tensor storage {key} has an unknown type "
                                  f"({getattr(stype, 'name', stype)!s:.60}); not a PyTorch checkpoint")
        if not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{self.where}: tensor storage {key} claims {str(numel):.40} elements; "
                                  "the file is corrupt")
        self.storages[key] = (stype, numel)
        return _Inert()


def _record(data: bytes | io.BytesIO, where: str) -> dict[str, tuple[_StorageType, int]]:
    rec = _StorageRecorder(data if isinstance(data, io.BytesIO) else io.BytesIO(data), where)
    try:
        rec.load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{where}: the tensor index (pickle) cannot be read ({type(exc).__name__}: "
                              f"{str(exc)[:80]}); the file is truncated or corrupt") from None
    return rec.storages


def _too_big(where: str, key: str, stype: _StorageType, numel: int, holds: int) -> CheckpointError:
    claimed = numel * stype.itemsize
    return CheckpointError(f"{where}: tensor storage {key} claims {numel:,} × {stype.itemsize} bytes = {claimed:,} bytes "
                           f"but the file holds {holds:,} bytes for it; the file is corrupt or malicious, "
                           "nothing was allocated")


def _check_zip(f, size: int, where: str) -> None:
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{where}: the file is truncated or corrupt (broken zip archive: {exc}); "
                              "copy it again") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                raise CheckpointError(f"{where}: zip entry {info.filename!r} is compressed; torch.save never "
                                      "compresses, so this is not a PyTorch checkpoint")
            if info.header_offset + info.compress_size > size:
                raise CheckpointError(f"{where}: zip entry {info.filename!r} claims {info.file_size:,} bytes, more "
                                      f"than the whole file ({size:,} bytes); the file is truncated or corrupt")
        for info in infos:  # CRC-32 of every entry (zipfile checks it when an entry is read to its end)
            try:
                with zf.open(info) as entry:
                    while entry.read(1 << 20):
                        pass
            except zipfile.BadZipFile as exc:
                raise CheckpointError(f"{where}: zip entry {info.filename!r} fails its checksum ({exc}); the file "
                                      "is corrupt, copy it again") from None
        pkls = [i for i in infos if i.filename.endswith("data.pkl") and i.filename.count("/") == 1]
        if len(pkls) != 1:
            raise CheckpointError(f"{where}: a zip archive without one <name>/data.pkl; not a PyTorch checkpoint")
        prefix = pkls[0].filename[: -len("data.pkl")]
        by_name = {i.filename: i for i in infos}
        for key, (stype, numel) in _record(zf.read(pkls[0]), where).items():
            entry = by_name.get(f"{prefix}data/{key}")
            if entry is None:
                raise CheckpointError(f"{where}: tensor storage {key} has no data entry in the archive; "
                                      "the file is truncated or corrupt")
            if numel * stype.itemsize > entry.file_size:
                raise _too_big(where, key, stype, numel, entry.file_size)


def _check_legacy(data: bytes, where: str) -> None:
    f = io.BytesIO(data)
    for what in ("magic number", "protocol version", "system info"):
        _load_plain(f, where, what)
    storages = _record(f, where)
    keys = _load_plain(f, where, "storage keys")
    if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
        raise CheckpointError(f"{where}: the storage list does not match the tensors; the file is corrupt")
    pos = f.tell()
    for key in map(str, keys):
        stype, numel = storages[key]
        if pos + 8 > len(data):
            raise CheckpointError(f"{where}: the file ends before tensor storage {key}; it is truncated")
        (count,) = struct.unpack_from("<q", data, pos)
        holds = len(data) - pos - 8
        if count != numel or numel * stype.itemsize > holds:
            raise _too_big(where, key, stype, numel, min(holds, max(count, 0) * stype.itemsize))
        pos += 8 + numel * stype.itemsize


def _load_plain(f: io.BytesIO, where: str, what: str):
    class _Plain(pickle.Unpickler):  # ints, strings, lists and dicts only
        def find_class(self, module, name):
            raise CheckpointError(f"{where}: the {what} of a torch file asks for {module}.{name}; not a checkpoint")

    try:
        return _Plain(f).load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{where}: the {what} of the torch file cannot be read ({type(exc).__name__}); "
                              "the file is truncated or corrupt") from None


def check_torch_file(source: str | Path | bytes, where: str | Path | None = None) -> None:
    """Refuse a ``torch.save`` file (a path, or its bytes) whose tensors claim more than it holds or whose
    zip checksums fail; reads the structure only, never the tensors into torch.

    Files that are neither zip nor legacy torch pickles are left to ``torch.load`` (which then fails).
    """
    where = str(where if where is not None else source if not isinstance(source, bytes) else "<bytes>")
    if isinstance(source, bytes):
        if source[:4] == b"PK\x03\x04":
            _check_zip(io.BytesIO(source), len(source), where)
        elif source.startswith(LEGACY_MAGIC):
            _check_legacy(source, where)
        return
    path = Path(source)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(LEGACY_MAGIC))
        if head[:4] == b"PK\x03\x04":
            f.seek(0)
            _check_zip(f, size, where)
            return
    if head == LEGACY_MAGIC:
        _check_legacy(path.read_bytes(), where)


class _BoundedReader:
    """A file whose ``read(n)`` never asks for more than what is left in it (reads never allocate a claimed size)."""

    def __init__(self, f, size: int):
        self.f, self.size = f, size

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.f.tell()
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.f.readline()

    def tell(self) -> int:
        return self.f.tell()


def check_pickle_lengths(path: str | Path) -> None:
    """Refuse a pickle whose length-prefixed arguments (bytes, strings) claim more than the file holds.

    Reads every opcode with ``pickletools.genops`` (nothing is built or imported);
    the tensors' own storages are checked later, one by one, by :func:`check_torch_file`.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        try:
            for _ in pickletools.genops(_BoundedReader(f, size)):
                pass
        except ValueError as exc:
            text = str(exc)
            if "remain" in text or "but only" in text:
                raise CheckpointError(f"{path}: the pickle claims more bytes than the file holds ({text[:120]}); "
                                      "it is truncated, corrupt or malicious, nothing was allocated") from None
            raise CheckpointError(f"{path}: not a valid pickle ({text[:120]})") from None
