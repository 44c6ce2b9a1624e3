"""The configuration of one search: every hyper-parameter, validated, saved in run.json.

Kept free of torch so that job specs, sweep grids and run readers can check a configuration
without importing the engine; :mod:`mgm_analysis.discovery` re-exports it.
"""

from __future__ import annotations

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
