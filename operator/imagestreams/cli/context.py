"""What a verb runs with: its parsed flags, the output streams, and a connection opened on first use."""

from __future__ import annotations

import argparse
import datetime
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from imagestreams.cli.errors import PrintedError
from imagestreams.cli.flags import DryRun, OutputFormat, parse_output
from imagestreams.cli.output import check_template, render, render_document

if TYPE_CHECKING:
    from imagestreams.cli.kube import Kube
    from imagestreams.cli.kubeconfig import Target


class Context:
    def __init__(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self._target: Target | None = None
        self._kube: Kube | None = None
        # Checked before anything is read or written, as kubectl checks -o first (verbs with the shared -o flag).
        self.output: OutputFormat | None = None
        if hasattr(args, "output_formats"):
            self.output = parse_output(args.output, args.template, args.output_formats)
            check_template(self.output)

    @property
    def target(self) -> Target:
        if self._target is None:
            # Loaded on first use, so commands that fail on their arguments never read a kubeconfig.
            from imagestreams.cli.kubeconfig import load_target  # noqa: PLC0415

            self._target = load_target(
                getattr(self.args, "kubeconfig", None),
                getattr(self.args, "context", None),
                getattr(self.args, "namespace", None),
            )
        return self._target

    @property
    def namespace(self) -> str:
        return self.target.namespace

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            # lightkube and httpx are loaded only by commands that talk to the API server.
            from imagestreams.cli.kube import Kube  # noqa: PLC0415

            self._kube = Kube(self.target)
        return self._kube

    @property
    def dry_run(self) -> DryRun:
        value: DryRun = getattr(self.args, "dry_run", DryRun.NONE)
        return value

    def out(self, text: str) -> None:
        self.stdout.write(text)

    def err(self, text: str) -> None:
        self.stderr.write(text)

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def new_import_request(self) -> str:
        """A fresh value for the import-request annotation: the time, and a random part so two never collide."""
        return f"{self.now().strftime('%Y-%m-%dT%H:%M:%SZ')}-{uuid.uuid4().hex[:8]}"

    def emit(self, objects: Sequence[Mapping[str, Any]], kind: str | None = None) -> None:
        """The objects in the -o format: one alone, several as a List (as kubectl prints them)."""
        if objects and self.output is not None:
            output, allow_missing_keys = self.output, self.args.allow_missing_template_keys
            self._out_or_explain(lambda: render(objects, output, kind=kind, allow_missing_keys=allow_missing_keys))

    def emit_document(self, document: Any) -> None:
        """Any document (not an API object) in the -o format."""
        assert self.output is not None
        output, allow_missing_keys = self.output, self.args.allow_missing_template_keys
        self._out_or_explain(lambda: render_document(document, output, allow_missing_keys=allow_missing_keys))

    def _out_or_explain(self, rendered: Callable[[], str]) -> None:
        """The rendered text; or, when a template fails, what kubectl writes to the output then, and the error."""
        try:
            text = rendered()
        except PrintedError as error:
            self.out(error.printed)
            raise
        self.out(text)
