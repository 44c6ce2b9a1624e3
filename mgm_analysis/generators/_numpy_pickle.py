"""Plain numeric numpy arrays and scalars out of a network pickle, and nothing else.

A pickled ``ndarray`` is ``numpy[._]core.multiarray._reconstruct(numpy.ndarray,
(0,), b'b')`` followed by a state ``(version, shape, dtype, is_fortran,
raw_bytes)``; its dtype is ``numpy.dtype(code, align, copy)`` with a state of
its own; a numpy scalar is ``numpy[._]core.multiarray.scalar(dtype, raw_bytes)``.
The restricted unpickler maps those four names onto the stand-ins here, which
accept only booleans, integers, floats and complex numbers with a fixed byte
order, and raw bytes of exactly the right length: an object, string or
structured dtype, a subarray, or a list of objects in place of the bytes is
refused before anything is built.  :func:`unwrap` turns the stand-ins into
real arrays once the surrounding object is complete.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import UnsafePickleError

__all__ = ["SafeDtype", "ArrayStub", "NDARRAY", "reconstruct", "scalar", "unwrap"]

_NUMERIC = re.compile(r"^[<>|=]?(b1|\?|[iu][1248]|f[248]|c(8|16))$")


def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(f"refused to load: the pickle holds a numpy {what}; only plain numeric arrays are allowed")


class SafeDtype:
    """Stand-in for ``numpy.dtype(code, align, copy)``: numeric kinds only."""

    def __init__(self, code, align=False, copy=False):
        if isinstance(code, bytes):
            code = code.decode("ascii", "replace")
        if not isinstance(code, str) or not _NUMERIC.match(code):
            raise _refuse(f"array or scalar of dtype {code!r}")
        self.dtype = np.dtype(code)

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise _refuse("structured or sub-array dtype")
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise _refuse(f"dtype with byte order {order!r}")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


class _NdarrayMarker:
    """What ``numpy.ndarray`` stands for inside a pickle: only a type tag for :func:`reconstruct`."""


NDARRAY = _NdarrayMarker()


class ArrayStub:
    """An array being rebuilt; :func:`unwrap` replaces it with ``self.array``."""

    array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5:
            raise _refuse("array with an unexpected state")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, SafeDtype):
            raise _refuse("array whose dtype is not a plain numeric type")
        if not isinstance(raw, bytes):
            raise _refuse("array of Python objects")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise _refuse(f"array with shape {shape!r}")
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * dtype.dtype.itemsize:
            raise _refuse(f"array whose data ({len(raw)} bytes) does not match its shape {list(shape)}")
        self.array = np.frombuffer(raw, dtype.dtype).reshape(shape, order="F" if fortran else "C").copy()


def reconstruct(subtype, shape, code):
    """Stand-in for ``numpy.core.multiarray._reconstruct``: plain ``ndarray`` only."""
    if subtype is not NDARRAY:
        raise _refuse(f"array subclass {subtype!r}")
    return ArrayStub()


def scalar(dtype, raw=None):
    """Stand-in for ``numpy.core.multiarray.scalar``: one numeric value from its raw bytes."""
    if not isinstance(dtype, SafeDtype):
        raise _refuse("scalar whose dtype is not a plain numeric type")
    if not isinstance(raw, bytes) or len(raw) != dtype.dtype.itemsize:
        raise _refuse("scalar without its raw bytes")
    return np.frombuffer(raw, dtype.dtype)[0].copy()


def unwrap(obj, _depth: int = 0):
    """Replace stand-ins (arrays, dtypes) in nested dicts, lists and tuples by numpy objects."""
    if _depth > 50:
        return obj
    if isinstance(obj, ArrayStub):
        if obj.array is None:
            raise _refuse("array without data")
        return obj.array
    if isinstance(obj, SafeDtype):
        return obj.dtype
    if isinstance(obj, dict):
        for k, v in list(obj.items()):
            if isinstance(v, (ArrayStub, SafeDtype, dict, list, tuple)):
                obj[k] = unwrap(v, _depth + 1)
        return obj
    if isinstance(obj, list):
        return [unwrap(v, _depth + 1) for v in obj]
    if isinstance(obj, tuple) and any(isinstance(v, (ArrayStub, SafeDtype, dict, list, tuple)) for v in obj):
        return type(obj)(unwrap(v, _depth + 1) for v in obj) if type(obj) is tuple else obj
    return obj
