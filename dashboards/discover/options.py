"""Whether the Discover view is on, and what its worker loads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiscoverOptions:
    """Whether the view is on, why not, and what the worker loads.

    Attributes:
        generator: built-in name or checkpoint path (``mgm dashboard --generator``).
        enabled: False shows ``reason`` instead of the view (no worker is started).
        threads: torch threads of the worker (default: all cores but one, at least one).
        device: where the worker loads the generator.
    """

    generator: str = "toyfaces"
    enabled: bool = True
    reason: str = ""
    threads: int | None = None
    device: str = "cpu"

    @classmethod
    def for_host(cls, host: str, generator: str = "toyfaces", allow: bool = False, **kw) -> "DiscoverOptions":
        """On for a loopback address; elsewhere only with ``allow`` (``--allow-discover``)."""
        local = str(host) in ("127.0.0.1", "localhost", "::1")
        if local or allow:
            return cls(generator=str(generator), enabled=True, **kw)
        return cls(generator=str(generator), enabled=False, reason=(
            f"Discover is off: this dashboard is bound to {host}, so anyone who can reach it could start "
            "searches on this machine (CPU time, disk). Serve it on 127.0.0.1, or start it with "
            "`mgm dashboard --allow-discover` if everyone on that network may launch jobs."), **kw)
