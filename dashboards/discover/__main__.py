"""``python -m dashboards.discover --worker --store ROOT``: the Discover worker process."""

import sys

from .worker import worker_main

sys.exit(worker_main())
