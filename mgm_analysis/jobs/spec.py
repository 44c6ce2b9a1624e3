"""A job spec: what to compute (JobSpec and its key), resolving it once (spec_region, spec_config), resuming one from a saved run, and the one "already done" rule (done)."""


from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import config_fields, flag_of
from ..errors import MGMError, RunReadError
from ..generators.latents import generator_spec
from ..kinds import KINDS, N_SOURCES, SEARCH_KINDS
from ..store import run_kind  # noqa: F401 (re-exported: a run's kind has one owner, the store)


# ------------------------------------------------------------------ specs
def _is_builtin(generator: str) -> bool:
    from ..generators import BUILTIN  # torch-free: the loaders import torch lazily

    return str(generator) in BUILTIN


def _abs(path) -> str:
    return str(Path(path).expanduser().resolve())


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise MGMError(f"a job spec holds only JSON values (numbers, strings, lists); got {type(v).__name__}")


@dataclass(frozen=True)
class JobSpec:
    """What one run computes.  Frozen; paths are made absolute so the key does not depend on the working folder.

    Attributes:
        kind: ``discover`` | ``transfer`` | ``combine`` | ``baseline``.
        generator: built-in name (``toyfaces``) or checkpoint path; for transfer/combine the source run's.
        region: region spec (``mouth``, ``rect:...``, a PNG); None for transfer/combine (the sources' masks).
        seed: seed of the reference latent (z → w with ``config["truncation"]``).
        reference: a latent ``.npy`` ([num_ws, w_dim] or [w_dim]) or a run folder (its ``reference.npy``);
            overrides ``seed``.
        layout: face layout of the region presets (None = the generator's).
        preset: a named configuration (``config.CONFIG_PRESETS``) under ``config``.
        config: DiscoveryConfig fields that differ from the defaults (None values are dropped).
        sources: run folders a transfer (1), combination (2) or baseline (0 or 1) derives from.
        params: extra parameters of a baseline: ``method`` (registered name), ``component``, ``scale``, ...
    """

    kind: str = "discover"
    generator: str = "toyfaces"
    region: str | None = "mouth"
    seed: int | None = 0
    reference: str | None = None
    layout: str | None = None
    preset: str | None = None
    config: dict = field(default_factory=dict)
    sources: tuple = ()
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        s = object.__setattr__
        if self.kind not in KINDS:
            raise MGMError(f"job kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}")
        lo, hi = N_SOURCES[self.kind]
        sources = tuple(_abs(p) for p in (self.sources or ()))
        if not lo <= len(sources) <= hi:
            need = str(lo) if lo == hi else f"{lo} to {hi}"
            raise MGMError(f"a {self.kind} job needs {need} source run(s), got {len(sources)}")
        s(self, "sources", sources)
        gen = str(self.generator)
        if not _is_builtin(gen) and Path(gen).expanduser().exists():  # a missing one keeps its name for the error
            gen = _abs(gen)
        s(self, "generator", gen)
        if self.reference is not None:
            s(self, "reference", _abs(self.reference))
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
                raise MGMError(f"a job's seed is a whole number, got {self.seed!r}")
            if not 0 <= self.seed <= 2**32 - 1:  # what every seeded generator accepts, the same on every machine
                raise MGMError(f"--seed must be in 0..{2**32 - 1} (32-bit seeds), got {self.seed}")
            s(self, "seed", int(self.seed))
        if self.kind in SEARCH_KINDS:
            if not self.region:
                raise MGMError(f"a {self.kind} job needs a region")
            if self.seed is None and self.reference is None and not sources:
                raise MGMError("give a reference: a seed (--seed N) or a latent file (--reference W.npy)")
        if self.kind == "transfer" and self.seed is None and self.reference is None:
            raise MGMError("a transfer job needs the seed or latent file of the face to transfer to")
        if self.kind == "baseline" and not (self.params or {}).get("method"):
            raise MGMError("a baseline job needs params['method'] (a registered baseline)")
        types = config_fields()
        cfg = {}
        for k, v in dict(self.config or {}).items():
            if v is None:
                continue
            if k not in types:
                raise MGMError(f"unknown config field {k!r}; known: {', '.join(sorted(types))}")
            if isinstance(v, float) and not math.isfinite(v):  # a spec is JSON: its key, run.json
                raise MGMError(f"{flag_of(k)} must be a finite number, got {v}")
            cfg[k] = _jsonable(v)
        s(self, "config", dict(sorted(cfg.items())))
        s(self, "params", _jsonable(dict(self.params or {})))

    def __hash__(self):
        return hash(self.key)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "JobSpec":
        names = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if k == "sources" else v) for k, v in d.items() if k in names})

    @cached_property
    def key(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the spec: equal specs, equal keys, on any machine."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def label(self) -> str:
        """Short readable name: the region (discover), ``transfer_<src>``, ``combine``, ``<method>_<region>``."""
        if self.kind == "discover":
            return str(self.region)
        if self.kind == "baseline":
            return f"{self.params.get('method')}_{self.region}"
        return f"{self.kind}_" + "+".join(Path(p).name.split("-")[0] for p in self.sources)

    @property
    def run_id(self) -> str:
        """Deterministic run folder name: ``<label>-s<seed>-<key[:12]>`` (``ref`` for a latent file)."""
        from ..store import _slug

        tag = f"s{self.seed}" if self.reference is None and self.seed is not None else "ref"
        return f"{_slug(self.label)}-{tag}-{self.key[:12]}"

    def replace(self, **changes) -> "JobSpec":
        d = self.to_dict()
        d.update(changes)
        return JobSpec.from_dict(d)


# ------------------------------------------------------------ one owner each
def prepare_out(out) -> Path:
    """Create the run store folder and check a run can be written there (before any search); MGMError if not."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise MGMError(f"--out {out}: exists and is not a folder; give a folder for the run store")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # a file with no name where the OS can (O_TMPFILE): a process killed here leaves nothing in the store
        with tempfile.TemporaryFile(dir=out, prefix=".write-test-") as f:
            f.write(b"x")
            f.flush()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise MGMError(f"--out {out}: cannot write a run there ({why}); choose a writable folder") from None
    return out


# ------------------------------------------------------------------ resolve
def spec_region(spec: JobSpec, G):
    """The :class:`~mgm_analysis.masks.Region` of a search job on generator ``G`` (the spec's layout, else the
    generator's)."""
    from ..masks import default_layout, parse_region

    return parse_region(spec.region, G.resolution, spec.layout or default_layout(G))


def spec_config(spec: JobSpec, G=None, region=None):
    """The one way a search job's configuration is resolved: the defaults of the generator and distance (or the
    spec's preset) for the region — a preset region's own target c on toyfaces — then the spec's fields.

    ``region``: the job's Region when the caller has it; else parsed with ``G``; without ``G``, the spec's region
    counts as a preset when its name is one of the built-in generator's layout (what a sweep checks before it
    loads anything).
    """
    from ..config import default_config
    from ..generators import BUILTIN

    name = getattr(getattr(G, "info", None), "name", None) if G is not None else (
        spec.generator if spec.generator in BUILTIN else None)
    if region is None and G is not None:
        region = spec_region(spec, G)
    if region is not None:
        preset = region.name if region.layout else None
    else:
        from ..presets import PRESETS

        layout = spec.layout or ("toyfaces" if name == "toyfaces" else "ffhq")
        preset = spec.region if spec.region in PRESETS.get(layout, {}) else None
    overrides = dict(spec.config)
    try:
        return default_config(name, overrides.pop("distance", None), region=preset, preset=spec.preset, **overrides)
    except TypeError as exc:  # a value of the wrong type that parse_config_value did not see
        raise MGMError(f"bad config value ({exc})") from None


# ------------------------------------------------------------------ resume
def _same_generator(a: str, b: str) -> bool:
    """Two generator specs name the same generator: the same built-in name, or the same file."""
    if a == b:
        return True
    if _is_builtin(a) or _is_builtin(b):
        return False
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _saved_spec(meta: dict, path: Path) -> JobSpec:
    """The spec of a saved run: its provenance.spec, or rebuilt from the run.json of an older run."""
    prov = meta.get("provenance") or {}
    if prov.get("spec"):
        spec = JobSpec.from_dict(prov["spec"])
        made_by = generator_spec(meta)
        if made_by and not _same_generator(made_by, spec.generator):
            raise MGMError(f"{path}: run.json says {made_by} made it but its job spec names {spec.generator}; the "
                           "run.json was edited or is corrupt — start a new run instead of resuming this one")
        return spec
    ref = meta.get("reference") or {}
    cfg = dict(meta.get("config") or {})
    gen = generator_spec(meta)
    if not gen:
        raise MGMError(f"{path}: the run does not say which generator made it; it cannot be resumed")
    return JobSpec(kind="discover", generator=gen, region=(meta.get("region") or {}).get("spec"),
                   seed=ref.get("seed"), reference=ref.get("file"), layout=(meta.get("region") or {}).get("layout"),
                   config={k: v for k, v in cfg.items() if k in config_fields()})


def resume_spec(path, *, generator=None, region=None, seed=None, reference=None, layout=None, preset=None,
                config: dict | None = None) -> JobSpec:
    """The spec that continues the interrupted run at ``path``, with a new ``epochs`` maximum if given.

    Every other argument is what the user asked for explicitly (None = not given); one that differs from the saved
    run is refused (MGMError), since resuming would ignore it, and so is an ``epochs`` below the epochs done.
    """
    from .. import store

    path = Path(path)
    run = store.load_run(path)
    meta = run.meta
    if meta.get("status") == "complete":
        raise MGMError(f"{path}: the run is already complete; nothing to resume")
    if run_kind(meta) != "discover":
        raise MGMError(f"{path}: a {run_kind(meta)} run has no search to resume; run the job again")
    spec = _saved_spec(meta, path)
    saved_cfg = dict(meta.get("config") or {})
    differ = []

    def check(flag, given, saved):
        if given is not None and given != saved:
            differ.append(f"{flag} {given} (the run has {saved})")

    check("--generator", None if generator is None else
          (str(generator) if _is_builtin(str(generator)) else _abs(generator)), spec.generator)
    check("--region", region, spec.region)
    check("--seed", seed, spec.seed)
    check("--reference", None if reference is None else _abs(reference), spec.reference)
    check("--layout", layout, (meta.get("region") or {}).get("layout") if layout is not None else None)
    check("--preset", preset, spec.preset)
    new = dict(config or {})
    epochs = new.pop("epochs", None)
    for k, v in new.items():
        if v is not None and k in saved_cfg and saved_cfg[k] != v:
            differ.append(f"{flag_of(k)} {v} (the run has {saved_cfg[k]})")
    if differ:
        raise MGMError(f"--resume {path}: {'; '.join(differ)}; resuming keeps the run's own settings, only "
                       "--epochs may change (start a new run for other settings)")
    done = int((meta.get("resume") or {}).get("epochs_done") or len((meta.get("history") or {}).get("epoch", [])))
    if epochs is not None and epochs < done:
        raise MGMError(f"--resume {path}: --epochs {epochs} is below the {done} epochs already done; give "
                       f"--epochs {done} or more")
    full = {k: v for k, v in saved_cfg.items() if k in config_fields()}
    if epochs is not None:
        full["epochs"] = epochs
    return spec.replace(config=full, preset=None)

def complete_run(out: Path, run_id: str, key: str):
    """The path of the complete run of job ``key`` in ``out/run_id`` (finished earlier or by another worker),
    else None."""
    from .. import store

    try:
        prev = store.load_run(out / run_id)
    except RunReadError:
        return None
    same = (prev.meta.get("provenance") or {}).get("key") == key
    return prev.path if same and prev.status == "complete" else None


def done(spec: JobSpec, out) -> Path | None:
    """The one "already done" rule: the complete run of ``spec`` in store ``out`` (its folder is
    ``spec.run_id``, a function of the spec's key), else None.  Every caller asks this before making a run."""
    return complete_run(Path(out).expanduser(), spec.run_id, spec.key)


def discover_spec(*, generator="toyfaces", region="mouth", seed=0, reference=None, truncation=None, layout=None,
                  preset=None, config=None) -> JobSpec:
    """The ``discover`` job of ``mgm discover``'s inputs (and ``mgm_analysis.discover``'s): a reference latent file
    wins over the seed; ``config`` holds DiscoveryConfig fields (``seed`` there is the search's init seed);
    ``truncation`` is the ψ of a reference made from a seed.  MGMError (one line) for a bad truncation."""
    if truncation is not None and not (isinstance(truncation, (int, float)) and 0 <= truncation <= 1):
        raise MGMError(f"--truncation must be in [0, 1], got {truncation}")
    config = {**(config or {}), "truncation": truncation}
    return JobSpec(kind="discover", generator=str(generator), region=region,
                   seed=None if reference is not None else seed, reference=reference, layout=layout, preset=preset,
                   config=config)
