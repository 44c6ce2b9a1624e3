"""The package imports without torch, and the CLI lists every command with help."""

import subprocess
import sys

from click.testing import CliRunner

from mgm_analysis.cli import main


def test_package_import_does_not_import_torch():
    code = "import sys; import mgm_analysis; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_every_command_has_help():
    runner = CliRunner()
    r = runner.invoke(main, ["--help"])
    assert r.exit_code == 0
    for name, cmd in main.commands.items():
        assert cmd.help, f"mgm {name} has no help text"
        r = runner.invoke(main, [name, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output, (name, r.output)
