"""``meshctl``, the command line: argparse and rich over ``controller.core``."""

from controller.cli.main import main

__all__ = ["main"]
