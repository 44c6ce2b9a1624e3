"""Frames, animations and contact sheets from a trajectory.

``render_frames(G, ws)`` runs the generator without gradients in batches and
returns float images [n, H, W, 3] in [0, 1] (the store's convention).  GIF
needs only Pillow; MP4 needs an ffmpeg binary (system ``ffmpeg`` or the
``imageio-ffmpeg`` package) and says so when there is none.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import store
from .errors import MGMError
from .store import to_uint8

__all__ = ["render_frames", "to_unit", "write_mp4", "outline", "draw_outline", "contact_sheet"]


def to_unit(img) -> np.ndarray:
    """torch img [B, 3, H, W] in [-1, 1] -> numpy [B, H, W, 3] in [0, 1]."""
    return ((img.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()


def render_frames(G, ws, batch: int = 16) -> np.ndarray:
    """Images of latents ws [n, num_ws, w_dim] (numpy or torch) -> [n, H, W, 3] float32 in [0, 1], no gradients."""
    import torch

    ws = ws.detach().float().cpu() if isinstance(ws, torch.Tensor) else torch.as_tensor(np.asarray(ws, np.float32))
    out = []
    with torch.no_grad():
        for i in range(0, len(ws), batch):
            out.append(to_unit(G.synthesis(ws[i:i + batch].to(G.w_avg.device))))
    return np.concatenate(out)


def _ffmpeg() -> str | None:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return None


def write_mp4(path: Path, frames: np.ndarray, fps: int = 12, scale: int | None = None, bounce: bool = True) -> Path:
    """H.264 MP4 of frames [n, H, W, 3] in [0, 1] through ffmpeg; one clear line when there is no encoder."""
    scale = scale or store.display_scale(frames)
    exe = _ffmpeg()
    if exe is None:
        raise MGMError("MP4 needs ffmpeg, which is not installed; install it (apt-get install ffmpeg or "
                       "pip install imageio-ffmpeg) or use --gif")
    from PIL import Image

    seq = list(frames) + (list(frames[-2:0:-1]) if bounce else [])
    with tempfile.TemporaryDirectory() as tmp:
        for i, f in enumerate(seq):
            im = Image.fromarray(to_uint8(f))
            im.resize((im.width * scale, im.height * scale), Image.NEAREST).save(Path(tmp) / f"{i:04d}.png")
        cmd = [exe, "-y", "-loglevel", "error", "-framerate", str(fps), "-i", str(Path(tmp) / "%04d.png"),
               "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", str(path)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise MGMError(f"ffmpeg failed writing {path}: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
    return path


def outline(mask: np.ndarray) -> np.ndarray:
    """[H, W] bool: pixels on the border of the region (either side of a 0/1 change).  The one mask outline
    (contact sheets, report strips, the dashboard)."""
    m = np.asarray(mask) > 0.5
    edge = np.zeros_like(m)
    edge[1:, :] |= m[1:, :] != m[:-1, :]
    edge[:, 1:] |= m[:, 1:] != m[:, :-1]
    return edge


def draw_outline(img: np.ndarray, mask: np.ndarray, color=(1.0, 0.9, 0.0)) -> np.ndarray:
    """The image [H, W, 3] in [0, 1] with the region's border (:func:`outline`) drawn in ``color``."""
    return np.where(outline(mask)[..., None], np.asarray(color, np.float32), np.asarray(img, np.float32))


def contact_sheet(frames: np.ndarray, mask: np.ndarray | None = None, reference: np.ndarray | None = None,
                  cols: int = 8, scale: int = 2, outline_color=(1.0, 0.9, 0.0)) -> np.ndarray:
    """Grid image [H', W', 3] in [0, 1]: the reference (if given) then every frame, mask outlined."""
    tiles = ([reference] if reference is not None else []) + list(frames)
    if mask is not None:
        tiles = [draw_outline(t, mask, outline_color) for t in tiles]
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    sheet = np.ones((rows * (h + 2), cols * (w + 2), 3), np.float32)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = t
    return np.kron(sheet, np.ones((scale, scale, 1), np.float32)) if scale > 1 else sheet
