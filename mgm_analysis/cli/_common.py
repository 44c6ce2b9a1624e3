"""Shared pieces of the command line: the group, and turning errors into one line."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import MGMError


class _Group(click.Group):
    """A click group that prints user errors as one line and exits non-zero."""

    def invoke(self, ctx):
        import warnings

        # A warning (a run skipped, a fit that did not converge) is one line too, not Python's two-line format;
        # only while the command runs (a notebook or a test that invokes it in its own process keeps its own)
        shown_before = warnings.showwarning
        warnings.showwarning = lambda message, *a, **k: click.echo(f"warning: {message}", err=True)
        try:
            return super().invoke(ctx)
        except MGMError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except click.UsageError as exc:  # a flag's value of the wrong type or range: one line, not click's usage block
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            click.echo(f"error: {exc.format_message()} (see {where} --help)", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        finally:
            warnings.showwarning = shown_before


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="mgm")
def main():
    """mgm: discover, store, analyse and browse semantic manifolds of a generator.

    \b
    Quick start on the built-in model:
      mgm demo                       # discover mouth, eyes, brows; analyse; serve the dashboard
      mgm discover --region mouth    # one run into runs/
      mgm analyze runs/ --out report/
      mgm dashboard runs/
    """
