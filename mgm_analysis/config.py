"""The configuration of one search: every hyper-parameter, validated, saved in run.json.

Kept free of torch so that job specs, sweep grids and run readers can check a configuration
without importing the engine; :mod:`mgm_analysis.discovery` re-exports it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields

from .errors import MGMError
from .run_schema import MAX_FRAMES

__all__ = ["DiscoveryConfig", "MAX_WEIGHT", "MAX_SEED"]

#: upper bound of the energy weights, σ and the step size (their float32 products must stay finite)
MAX_WEIGHT = 1e6
#: seeds are 32-bit (numpy's and torch's common range, the same on every machine)
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class DiscoveryConfig:
    """Every hyper-parameter of one search; saved with ``asdict`` in run.json.  CLI flags map 1:1 to fields."""

    n_frames: int = 36                 # latents in the chain (paper: 36)
    layer_start: int = 2               # first free W+ layer, inclusive (paper: 2)
    layer_end: int = 8                 # end of the free W+ layers, exclusive (paper: 8)
    alpha: float = 0.3                 # α, weight of the primary springs ‖w_{i+1} − w_i‖
    beta: float = 0.1                  # β, weight of the stiffener springs ‖w_{i+2} − w_i‖
    gamma: float = 0.5                 # γ, weight of the image term L_X
    prim_dist: float = 4.0             # σ, rest length of a primary spring (stiffener: 2σ)
    offset: float = 0.25               # c, target inside distance D_in
    outside_weight: float = 1.0        # λ on D_out (paper: 1)
    distance: str = "lpips"            # "l2" (mean squared error, images in [-1, 1]) | "lpips" (AlexNet, the paper)
    mask_mode: str = "map"             # "map": any mask | "paper": one rectangle, crop + four outside strips
    optimizer: str = "lbfgs"           # "lbfgs" (the paper) | "adam"
    lr: float = 1.0                    # L-BFGS step size (1 = the paper) or Adam learning rate
    history_size: int = 20             # L-BFGS history (the paper: 20)
    max_iter: int = 8                  # L-BFGS iterations per epoch (the paper: 8)
    line_search: str = "strong_wolfe"  # L-BFGS line search: "strong_wolfe" | "none" (fixed step lr, the paper's code)
    epochs: int = 500                  # maximum epochs (the paper: 500)
    init_noise: float = 0.01           # scale of the initial perturbation of the free layers (all but latent 0)
    offset_ramp: bool = False          # c_i ramps linearly from 0 to c along the chain
    closed_loop: bool = False          # springs wrap around: the chain is a loop
    chunk_size: int = 0                # latents per generator call; 0 = automatic (see chunk_sizes)
    patience: int = 0                  # stop when E improved < tol (relative) over this many epochs; 0 = never
    tol: float = 1e-4                  # relative improvement that counts as progress for `patience`
    seed: int = 0                      # seeds the initial perturbation (and the per-run noise, noise_mode random)
    truncation: float = 0.7            # ψ of a reference made from a seed (the paper's code: 1, no truncation)
    truncation_cutoff: int | None = None  # truncate only the first N W+ layers (NVIDIA's truncation_cutoff); None = all
    init_mode: str = "noise"           # "noise": N(0, init_noise²) per latent | "paper": a_i·d, d ~ init_noise·N shared
                                       # | "jacobian": on the circle of edits (cone, sweep) at D_in = c around the
                                       # most local masked-Jacobian direction (jacobian_start; the toyfaces default)
    noise_mode: str = "const"          # "const": the generator's fixed noise | "random": per-run noise from seed
    stop_tol: float = 0.0              # quality stop: every frame's |D_in − c_i| <= stop_tol·c ... (0 = off)
    stop_window: int = 3               # ... and the outside and spring terms fell < stop_rel·E over this many epochs
    stop_rel: float = 0.01             # a fall (share of the energy E) over stop_window epochs that counts as stopped
    coarse_frames: int = 0             # coarse-to-fine: first a chain of this many frames (0 = off), then subdivide
    coarse_epochs: int = 0             # epoch cap of that coarse chain (its own quality stop may end it sooner)
    image_spring: float = 0.0          # δ, weight of the image springs γ·δ·Σ|D_in(x_j, x_i) − t_ij| between frames one
                                       # and two apart (0 = off: the paper); t_ij: the chord between them on the
                                       # circle of edits that cone and sweep describe
    cone: float = 90.0                 # angular radius (degrees) of that circle around the most local edit at D_in = c;
                                       # 90 = a great circle through that edit and its opposite
    sweep: float = 180.0               # degrees of the circle an open chain covers (a closed loop: the full turn)
    clip: bool = False                 # distances on images clipped to [-1, 1], as the frames are saved

    def __post_init__(self):
        if self.n_frames < 3:
            raise MGMError(f"--frames must be >= 3 (the stiffener springs need two neighbours), got {self.n_frames}")
        if not 0 <= self.layer_start < self.layer_end:
            raise MGMError(f"--layers {self.layer_start}:{self.layer_end} is empty or negative; use START:END "
                           "with 0 <= START < END")
        for name in ("alpha", "beta", "gamma", "prim_dist", "offset", "outside_weight", "init_noise", "tol",
                     "stop_tol", "stop_rel", "image_spring", "sweep", "cone"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise MGMError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise MGMError(f"--lr must be > 0, got {self.lr}")
        for name, low in (("epochs", 1), ("history_size", 1), ("max_iter", 1), ("chunk_size", 0), ("patience", 0),
                          ("stop_window", 1)):
            if getattr(self, name) < low:
                raise MGMError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(self, name)}")
        if self.distance not in ("l2", "lpips"):
            raise MGMError(f"--distance must be l2 or lpips, got {self.distance!r}")
        if self.mask_mode not in ("map", "paper"):
            raise MGMError(f"--mask-mode must be map or paper, got {self.mask_mode!r}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise MGMError(f"--optimizer must be lbfgs or adam, got {self.optimizer!r}")
        if self.line_search not in ("strong_wolfe", "none"):
            raise MGMError(f"--line-search must be strong_wolfe or none, got {self.line_search!r}")
        if not (math.isfinite(self.truncation) and 0 <= self.truncation <= 1):
            raise MGMError(f"--truncation must be in [0, 1], got {self.truncation}")
        if self.truncation_cutoff is not None and (isinstance(self.truncation_cutoff, bool) or
                                                   not isinstance(self.truncation_cutoff, int) or
                                                   self.truncation_cutoff < 0):
            raise MGMError(f"--truncation-cutoff must be an integer >= 0 (W+ layers to truncate), "
                           f"got {self.truncation_cutoff!r}")
        if self.init_mode not in ("noise", "paper", "jacobian"):
            raise MGMError(f"--init-mode must be noise, paper or jacobian, got {self.init_mode!r}")
        if self.noise_mode not in ("const", "random"):
            raise MGMError(f"--noise-mode must be const or random, got {self.noise_mode!r}")
        # Upper bounds: far beyond any useful setting, they turn a typo (1e308, 10**9 frames) into one line
        # before anything is allocated or searched.
        if self.n_frames > MAX_FRAMES:
            raise MGMError(f"--frames must be <= {MAX_FRAMES} (a longer chain does not fit in memory for a real "
                           f"generator), got {self.n_frames}")
        if self.offset > 4:
            raise MGMError(f"--offset must be <= 4 (the largest l2 distance of images in [-1, 1]; LPIPS distances "
                           f"are about 1 at most), got {self.offset}")
        if self.cone > 90:
            raise MGMError(f"--cone must be <= 90 degrees (a great circle), got {self.cone}")
        if self.sweep > 360:
            raise MGMError(f"--sweep must be <= 360 degrees (a full turn), got {self.sweep}")
        for name in ("alpha", "beta", "gamma", "prim_dist", "outside_weight", "lr", "image_spring"):
            if getattr(self, name) > MAX_WEIGHT:
                raise MGMError(f"--{name.replace('_', '-')} must be <= {MAX_WEIGHT:g} (larger values overflow the "
                               f"float32 energy), got {getattr(self, name)}")
        if self.init_noise > 100:
            raise MGMError(f"--init-noise must be <= 100 (w values are of order 1; more noise starts the chain "
                           f"nowhere near the reference), got {self.init_noise}")
        for name, high in (("epochs", 1_000_000), ("history_size", 1000), ("max_iter", 10_000),
                           ("chunk_size", MAX_FRAMES), ("patience", 1_000_000), ("stop_window", 1_000_000),
                           ("coarse_epochs", 1_000_000)):
            if getattr(self, name) > high:
                raise MGMError(f"--{name.replace('_', '-')} must be <= {high}, got {getattr(self, name)}")
        for name in ("stop_tol", "stop_rel"):
            if getattr(self, name) > 1:
                raise MGMError(f"--{name.replace('_', '-')} must be <= 1 (a share of c or of the energy), "
                               f"got {getattr(self, name)}")
        if self.coarse_frames and not 3 <= self.coarse_frames < self.n_frames:
            raise MGMError(f"--coarse-frames must be 0 (off) or between 3 and --frames - 1 ({self.n_frames - 1}), "
                           f"got {self.coarse_frames}")
        if self.coarse_frames and self.coarse_epochs < 1:
            raise MGMError("--coarse-frames needs --coarse-epochs >= 1 (the coarse chain's epoch cap)")
        if self.coarse_epochs < 0:
            raise MGMError(f"--coarse-epochs must be >= 0, got {self.coarse_epochs}")
        if not 0 <= self.seed <= MAX_SEED:
            raise MGMError(f"--init-seed must be in 0..{MAX_SEED} (32-bit seeds), got {self.seed}")

    @property
    def n_free(self) -> int:
        return self.layer_end - self.layer_start

    def check_generator(self, num_ws: int) -> None:
        """Raise when the free layers do not exist in a generator with ``num_ws`` W+ layers."""
        if self.layer_end > num_ws:
            raise MGMError(f"--layers {self.layer_start}:{self.layer_end} is outside the generator's {num_ws} W+ "
                           f"layers; use END <= {num_ws}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiscoveryConfig":
        """The config saved in a run.json (unknown keys from other versions are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


#: our defaults for a checkpoint: the paper's weights and chain (α, β, γ, σ, c, 36 frames, 500 epochs, LPIPS) with
#: our choices elsewhere (strong-Wolfe line search, any mask, ψ 0.7, independent start, constant noise);
#: docs/discover.md tabulates each against the paper's code
CHECKPOINT_DEFAULTS = dict(n_frames=36, layer_start=2, layer_end=8, alpha=0.3, beta=0.1, gamma=0.5, prim_dist=4.0,
                           offset=0.25, outside_weight=1.0, distance="lpips", epochs=500)


#: exactly the reference code's algorithm (bmolab/masked-gan-manifold, run.py): L-BFGS (history 20, 8 iterations,
#: step 1, no line search), LPIPS on the crop and the four area-weighted outside strips, an untruncated reference,
#: a start w* + a_i·d with one shared d ~ 0.001·N(0, I) and a_i ~ N(0, 1) per latent, noise drawn once per run
PAPER = dict(n_frames=36, layer_start=2, layer_end=8, alpha=0.3, beta=0.1, gamma=0.5, prim_dist=4.0, offset=0.25,
             outside_weight=1.0, distance="lpips", mask_mode="paper", optimizer="lbfgs", lr=1.0, history_size=20,
             max_iter=8, line_search="none", epochs=500, init_mode="paper", init_noise=0.001, offset_ramp=False,
             closed_loop=False, patience=0, truncation=1.0, noise_mode="random")


#: named configurations for ``--preset`` / ``default_config(preset=...)``
CONFIG_PRESETS = {"paper": PAPER}


#: toyfaces + l2, calibrated on the built-in model (docs/discover.md, "Calibration" and "A chain that explores"):
#: a closed loop of edits at D_in = c, 35° around the most local one, spaced by image springs (δ = 1) instead of
#: the paper's latent springs (α = β = 0: met along directions the image ignores, they let the chain collapse to
#: one edit), λ = 20, distances on the clipped frames as saved, the masked-Jacobian start and 10 epochs
TOYFACES_L2 = dict(n_frames=16, layer_start=2, layer_end=8, alpha=0.0, beta=0.0, gamma=0.5, prim_dist=0.35,
                   offset=0.03, outside_weight=20.0, distance="l2", epochs=10, init_mode="jacobian", patience=0,
                   image_spring=1.0, cone=35.0, closed_loop=True, clip=True)


#: the toyfaces + l2 defaults of 2026-11-30 (latent springs, one-point Jacobian start): chains that stand still
TOYFACES_L2_POINT = dict(n_frames=16, layer_start=2, layer_end=8, alpha=0.3, beta=0.1, gamma=0.5, prim_dist=0.35,
                         offset=0.03, outside_weight=10.0, distance="l2", epochs=10, init_mode="jacobian", patience=0,
                         sweep=0.0)


#: the toyfaces + l2 defaults before the masked-Jacobian start (30 epochs from a noise start), for comparison
TOYFACES_L2_NOISE = dict(TOYFACES_L2_POINT, epochs=30, init_mode="noise")


#: c per toyfaces preset: ½ × the mean inside MSE ([-1, 1] images) between renders whose region factors are
#: resampled (the procedural renderer, 256 faces); other regions get TOYFACES_L2["offset"]
TOYFACES_OFFSETS = {"mouth": 0.023, "eyes": 0.056, "left_eye": 0.058, "right_eye": 0.058, "brows": 0.042,
                    "nose": 0.01, "chin": 0.03}


def default_config(generator_name: str | None, distance: str | None = None, region: str | None = None,
                   preset: str | None = None, **overrides) -> DiscoveryConfig:
    """Defaults per generator and distance (or a named ``preset``), then ``overrides`` (None values are ignored).

    ``preset`` (see :data:`CONFIG_PRESETS`, e.g. "paper") sets every field whatever the generator; ``distance``
    and ``overrides`` still win.  Otherwise toyfaces + l2: calibrated here (per-region c for the presets);
    anything else: :data:`CHECKPOINT_DEFAULTS`, with ``distance`` as given (lpips by default; l2 on toyfaces).
    """
    if preset is not None:
        if preset not in CONFIG_PRESETS:
            raise MGMError(f"unknown preset {preset!r}; known: {', '.join(sorted(CONFIG_PRESETS))}")
        base = dict(CONFIG_PRESETS[preset])
        if distance is not None:
            base["distance"] = distance
    elif generator_name == "toyfaces" and distance in (None, "l2"):
        base = dict(TOYFACES_L2)
        if region in TOYFACES_OFFSETS:
            base["offset"] = TOYFACES_OFFSETS[region]
    else:
        base = dict(CHECKPOINT_DEFAULTS)
        if generator_name == "toyfaces":  # lpips on toyfaces: the toyfaces chain, the paper's image weights
            base.update(n_frames=16, epochs=30, prim_dist=TOYFACES_L2["prim_dist"])
        base["distance"] = distance or ("l2" if generator_name == "toyfaces" else "lpips")
    base.update({k: v for k, v in overrides.items() if v is not None})
    return DiscoveryConfig(**base)


#: the command-line flag of a DiscoveryConfig field, where it is not ``--`` + the name with dashes
FLAG_OF = {"n_frames": "--frames", "seed": "--init-seed", "layer_start": "--layers", "layer_end": "--layers"}


def flag_of(name: str) -> str:
    return FLAG_OF.get(name, "--" + name.replace("_", "-"))


@functools.lru_cache(maxsize=1)
def config_fields() -> dict[str, str]:
    """DiscoveryConfig field name -> its type name (``int``, ``float``, ``bool``, ``str``, ``int | None``).

    DiscoveryConfig lives in the torch-free :mod:`mgm_analysis.config`, so checking ``--set`` values
    imports no torch (10 s on a busy 2-core machine).
    """
    return {f.name: str(f.type) for f in fields(DiscoveryConfig)}


def parse_config_value(name: str, text: str):
    """A DiscoveryConfig field's value from text (``--set epochs=30``); MGMError for an unknown field or bad value."""
    types = config_fields()
    if name not in types:
        raise MGMError(f"unknown config field {name!r}; known: {', '.join(sorted(types))}")
    kind, t = types[name], str(text).strip()
    if kind.endswith("| None"):
        if t.lower() in ("none", ""):
            return None
        kind = kind.split("|")[0].strip()
    try:
        if kind == "int":
            return int(t)
        if kind == "float":
            return float(t)
        if kind == "bool":
            low = t.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
    except ValueError:
        raise MGMError(f"config field {name} takes a{'n' if kind == 'int' else ''} {kind}, got {t!r}") from None
    return t


# ------------------------------------------------------------------ helpers
def parse_layers(text: str) -> tuple[int, int]:
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError:
        raise MGMError(f"--layers {text!r}: expected START:END, e.g. 2:8") from None


#: at most this many seeds in one --seeds (a sweep of 100000 runs is days of work; more is a typo)
MAX_SEEDS = 100_000


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """Seeds and ranges ("0-9,12") -> a list; each in 0..2**32-1, at most MAX_SEEDS (checked before any list
    is built, so "0-1000000000" costs nothing)."""
    out: list[int] = []
    try:
        for part in str(text).split(","):
            if "-" in part.strip()[1:]:
                a, b = (int(v) for v in part.split("-", 1))
                if not 0 <= a <= b <= MAX_SEED:
                    raise MGMError(f"{flag} range {part.strip()!r}: give START-END with 0 <= START <= END <= {MAX_SEED}")
                if len(out) + b - a + 1 > MAX_SEEDS:
                    raise MGMError(f"{flag} {text!r} names more than {MAX_SEEDS} seeds; give fewer")
                out.extend(range(a, b + 1))
            elif part.strip():
                out.append(int(part))
                if not 0 <= out[-1] <= MAX_SEED or len(out) > MAX_SEEDS:
                    raise MGMError(f"{flag} {text!r}: seeds are 0..{MAX_SEED}, at most {MAX_SEEDS} of them")
    except ValueError:
        raise MGMError(f"{flag} {text!r}: expected numbers and ranges, e.g. 0-9 or 1,4,7") from None
    if not out:
        raise MGMError(f"{flag} is empty")
    return out
