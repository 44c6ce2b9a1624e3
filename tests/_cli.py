"""CLI helpers shared by the tests: ``mgm`` in this process (Click's runner) and the tiny search settings."""

import signal

from click.testing import CliRunner

from mgm_analysis.cli import main

#: a search that takes about a second on the 16² test checkpoint
FAST_CONFIG = {"n_frames": 5, "epochs": 2, "layer_start": 1, "layer_end": 4, "prim_dist": 0.2, "offset": 0.05,
               "outside_weight": 5.0, "distance": "l2"}


def mgm(*args):
    """``mgm ARGS`` in this process; exceptions are not caught (a traceback fails the test)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def sigint_default():
    """``preexec_fn`` for a child that must see Ctrl-C: a child of a background job inherits SIGINT as ignored,
    and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
