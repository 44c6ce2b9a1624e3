"""The Discover view's component ids (stable: tests and users' scripts drive the view with them)."""

PANEL = "discover-panel"
OFF = "discover-off"
SEED = "discover-seed"
REF_KIND = "discover-ref-kind"
REF_RUN = "discover-ref-run"
UPLOAD = "discover-upload"
REF_NOTE = "discover-ref-note"
REFERENCE = "discover-reference"      # dcc.Store: {"seed": int} | {"run": run_id} | {"file": path} (the face shown)
FACE = "discover-face"
SHAPES = "discover-shapes"            # dcc.Store: the shapes drawn on the face (plotly layout.shapes)
CLEAR_SHAPES = "discover-clear"
MASK = "discover-mask"
REGION = "discover-region"
FRAMES = "discover-frames"
EPOCHS = "discover-epochs"
OFFSET = "discover-offset"
OUTSIDE = "discover-outside-weight"
LAYERS = "discover-layers"
DISTANCE = "discover-distance"
LAUNCH = "discover-launch"
CANCEL = "discover-cancel"
ERROR = "discover-error"
PROGRESS = "discover-progress"
STRIP = "discover-strip"
JOBS = "discover-jobs"                # dcc.Store: the ids of the jobs this page launched
LANDED = "discover-landed"            # dcc.Store: the job ids whose runs this page already showed
POLL = "discover-poll"
INIT = "discover-init"                # dcc.Store: filled once per page load with the generator's facts
PRESET_PREFIX = "discover-preset-"    # + a name of PRESET_NAMES: the preset buttons

PRESET_NAMES = ("mouth", "eyes", "left_eye", "right_eye", "brows", "nose", "chin")
