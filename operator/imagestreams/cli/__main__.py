"""`kubectl-imagestream` (and `python -m imagestreams.cli`): the kubectl plugin's entry point."""

from __future__ import annotations

import sys


def main() -> None:
    from imagestreams.cli.app import run  # noqa: PLC0415 - kept inside so importing this module costs nothing

    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
