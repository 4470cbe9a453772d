"""Command-line entry point (placeholder until the layers land)."""
import argparse

from rnnkit import __version__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="rnnkit")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    parser.parse_args(argv)
    return 0
