"""`python -m imagestreams.controller` (console script `imagestreams-operator`): run the operator."""

from __future__ import annotations

import argparse
import sys

import kopf

from imagestreams.api.settings import OperatorSettings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagestreams-operator", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    try:
        settings = OperatorSettings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import imagestreams.controller.handlers  # noqa: F401, PLC0415 - registers the handlers with Kopf

    namespaces = list(settings.namespaces)
    kopf.configure(verbose=args.verbose)
    kopf.run(standalone=True, clusterwide=not namespaces, namespaces=namespaces)
    return 0


if __name__ == "__main__":
    sys.exit(main())
