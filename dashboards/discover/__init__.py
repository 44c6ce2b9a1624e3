"""The dashboard's Discover view: draw a region on a face, launch a search, watch it, keep the run.

The dashboard process stays torch-free.  Everything that needs the generator — rendering the reference face,
the configuration checks of ``mgm discover``, the search itself — happens in one warm **worker process**
(``python -m dashboards.discover --worker``, :mod:`.worker`) started with the dashboard; it loads the
generator once and runs the launched jobs one after the other through the shared job executor
(:class:`mgm_analysis.executor.Executor`, which runs :func:`mgm_analysis.jobs.run_job`), so a launch starts
without loading anything.  The two talk over the worker's stdin/stdout (one JSON object a line; the page's
side is :class:`.client.WorkerClient`); what a job does is written to files in the store's hidden folder
``<store>/.mgm_discover/jobs/<job>/`` (:mod:`.protocol`), which the page polls (every :data:`.layout.POLL_MS`);
a reloaded page (or another tab) follows the jobs queued or running at the time.  Cancel stops the running
job at once, even in its Jacobian start: the job API saves the run as ``interrupted`` at its last finished
epoch (resumable with ``mgm discover --resume``) and the worker goes on with the next job; a queued job is
cancelled at once.

Regions are drawn with plotly's own shape tools (rectangle, ellipse, closed free-hand path; several shapes
are their union) and turned into a region spec that ``--region`` accepts
(:func:`mgm_analysis.masks.region_spec_of_shapes`); the mask shown is :func:`mgm_analysis.masks.parse_region`
of that spec, the function the engine uses.  A union of shapes of different kinds is written as a PNG mask.

Modules: :mod:`.ids` (component ids), :mod:`.options`, :mod:`.form` (the form's input → a job spec),
:mod:`.protocol` (job folders, request lines), :mod:`.client`, :mod:`.worker`, :mod:`.layout` (the card),
:mod:`.callbacks` (:func:`register`).
"""

from mgm_analysis.masks import (
           path_vertices,
           preset_of_boxes,
           region_spec_of_shapes,
           resolve_region,
           shape_spec,
)

from .callbacks import register
from .client import _CLIENTS, WorkerClient
from .form import (
           DISTANCES,
           MAX_UPLOAD_BYTES,
           SETTINGS,
           page_spec,
           save_upload,
           settings_config,
           valid_reference,
)
from .ids import *  # noqa: F403 - the component ids
from .layout import POLL_MS, card, face_figure, mask_preview_png, panel, preset_shapes, progress_children
from .options import DiscoverOptions
from .protocol import (
           FACE_PX,
           FINAL,
           HIDDEN,
           STRIP_EVERY_S,
           STRIP_FRAMES,
           hidden_dir,
           job_dir,
           job_state,
           open_jobs,
)
from .worker import _strip_png, check_job, worker_main

__all__ = ["DiscoverOptions", "card", "register", "panel", "WorkerClient", "_CLIENTS", "settings_config",
           "valid_reference", "page_spec", "save_upload", "SETTINGS", "DISTANCES", "MAX_UPLOAD_BYTES",
           "face_figure", "preset_shapes", "mask_preview_png", "progress_children", "POLL_MS", "FACE_PX", "FINAL",
           "HIDDEN", "STRIP_EVERY_S", "STRIP_FRAMES", "hidden_dir", "job_dir", "job_state", "open_jobs",
           "check_job", "_strip_png", "worker_main", "path_vertices", "shape_spec", "preset_of_boxes",
           "region_spec_of_shapes", "resolve_region"]
