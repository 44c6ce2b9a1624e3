"""The ``mgm`` command line: one entry point, one module per group of subcommands."""

from ._common import main  # noqa: F401, I001 (main first: the modules below register on it)

# Each module registers its subcommands on ``main``.
from . import info  # noqa: F401,E402
from . import discover  # noqa: F401,E402
from . import sweep  # noqa: F401,E402
from . import analyze  # noqa: F401,E402
from . import dashboard  # noqa: F401,E402
from . import toyfaces  # noqa: F401,E402
from . import baselines  # noqa: F401,E402
