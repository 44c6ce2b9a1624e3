"""Images: the one PNG/GIF codec of the package (run frames, masks, the report, the dashboard), numpy and Pillow
only.  Every image is float in [0, 1], [H, W, 3] (RGB) or [H, W] (grey); files of any bit depth are read to that
range, and an image too large to be a generator's frame is refused before it is decoded.  The run store
(:mod:`mgm_analysis.store`) writes a run's images with these functions and names them as its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import MGMError

__all__ = ["MAX_IMAGE_PIXELS", "to_uint8", "png_bytes", "png_data_uri", "write_png", "read_png", "display_scale",
           "write_gif"]

#: images larger than this are refused before they are decoded: 16 times a 1024² generator's frames and
#: masks, and 64 MB as float32 (a 20000² PNG would ask for 4.8 GB)
MAX_IMAGE_PIXELS = 4096 * 4096


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 (clipped; NaN, e.g. the images of a diverged search, -> 0)."""
    img = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(img: np.ndarray, scale: int = 1) -> bytes:
    """float [H, W, 3] or [H, W] in [0, 1] -> 8-bit PNG bytes (RGB or grey), enlarged ``scale``× by nearest
    neighbour.  The one PNG encoder of the package: run files, the report and the dashboard use it."""
    import io

    from PIL import Image

    im = Image.fromarray(to_uint8(img))  # [H, W, 3] -> RGB, [H, W] -> L
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def png_data_uri(img) -> str:
    """``data:image/png;base64,...`` of an image (see :func:`png_bytes`) or of PNG bytes."""
    import base64

    data = img if isinstance(img, (bytes, bytearray)) else png_bytes(img)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def write_png(path: Path, img: np.ndarray) -> None:
    """float [H, W, 3] or [H, W] in [0, 1] -> 8-bit PNG file."""
    Path(path).write_bytes(png_bytes(img))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # Pillow's modes of 16-bit grey PNGs


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk without decoding it; None when the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def read_png(path: Path, gray: bool = False, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Image file (PNG of any bit depth) -> float32 in [0, 1], [H, W, 3] (or [H, W] with ``gray``).

    Each value is scaled by the true range of its bit depth: 8-bit by 255, 16-bit by 65535 (200 of a
    16-bit PNG is 0.003), 1/2/4-bit as Pillow expands them.  Raises :class:`MGMError` (one line) for a
    file that is not a readable image or has more than ``max_pixels`` pixels (checked before decoding).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)

    def too_big(w, h):
        return MGMError(f"{path}: image of {w}x{h} pixels is larger than the {max_pixels} pixels allowed "
                        f"({int(max_pixels ** 0.5)}² ); give an image at the generator's resolution")

    try:
        size = _png_size(path)
        if size is not None and size[0] * size[1] > max_pixels:
            raise too_big(*size)
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise too_big(im.width, im.height)
            if im.mode in _SIXTEEN_BIT:
                arr = np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
                arr = arr if gray else np.repeat(arr[..., None], 3, axis=-1)
            elif im.mode == "F":
                arr = np.asarray(im, dtype=np.float32)
                if not np.isfinite(arr).all():
                    raise MGMError(f"{path}: the image holds NaN or infinite values")
                arr = np.clip(arr, 0.0, 1.0)
                arr = arr if gray else np.repeat(arr[..., None], 3, axis=-1)
            else:
                arr = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    except MGMError:
        raise
    except Image.DecompressionBombError:
        raise MGMError(f"{path}: image is larger than the {max_pixels} pixels allowed; give an image at the "
                       "generator's resolution") from None
    except FileNotFoundError:
        raise MGMError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise MGMError(f"{path}: not a readable image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") \
            from None
    return arr


def display_scale(frames: np.ndarray) -> int:
    """The integer upscaling every written animation uses: small frames (64²) show at about 256 pixels."""
    return max(1, 256 // int(np.shape(frames)[1]))


def write_gif(path: Path, frames: np.ndarray, duration_ms: int = 80, bounce: bool = True,
              scale: int | None = None) -> Path:
    """Animated GIF of frames [n, H, W, 3] in [0, 1] (Pillow); ``bounce`` plays forward then back (open chains);
    ``scale`` None = :func:`display_scale`.  The one writer of animations (the store's and ``mgm render``'s)."""
    from PIL import Image

    scale = display_scale(frames) if scale is None else scale
    imgs = [Image.fromarray(to_uint8(f)) for f in frames]
    if scale > 1:
        imgs = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in imgs]
    if bounce and len(imgs) > 2:
        imgs = imgs + imgs[-2:0:-1]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=duration_ms, loop=0, optimize=False)
    return Path(path)
