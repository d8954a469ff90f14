"""`imagestream-operator` (or `python -m imagestreams.controller`): run the image stream operator.

Every setting can be given as a flag or as an IMAGESTREAMS_* environment variable; a flag wins.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

import kopf

from imagestreams.api.settings import ENV_PREFIX, OperatorSettings, SettingsError
from imagestreams.controller import logs
from imagestreams.controller.health import Health, HealthServer
from imagestreams.controller.metrics import Metrics

if TYPE_CHECKING:
    from imagestreams.admission.certstore import CertificateStore
    from imagestreams.admission.server import WebhookServer
    from imagestreams.controller.notifications import NotificationServer
    from imagestreams.kube.leader import LeaderElection


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagestream-operator", description=__doc__)
    parser.add_argument("--log-format", choices=["plain", "json"], default="plain", help="log line format")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    settings = parser.add_argument_group("settings (default: the IMAGESTREAMS_* variable, else the built-in default)")
    for name, field in OperatorSettings.model_fields.items():
        default = field.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        settings.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            metavar="VALUE",
            help=f"{field.description} [env {ENV_PREFIX}{name.upper()}; default {shown or 'none'}]",
        )
    return parser


# Not a setting: the source revision an image was built from, shown in imagestreams_build_info (the Dockerfile may set
# it from a build argument).
REVISION_VARIABLE = "IMAGESTREAMS_BUILD_REVISION"


def _election(settings: OperatorSettings, health: Health) -> LeaderElection:
    """This replica's candidacy for the Lease (see kube/leader.py)."""
    import socket  # noqa: PLC0415 - only needed with leader election
    import uuid  # noqa: PLC0415

    import httpx2  # noqa: PLC0415
    from lightkube import Client  # noqa: PLC0415

    from imagestreams.kube.leader import LeaderElection  # noqa: PLC0415

    return LeaderElection(
        # Requests shorter than a renewal period, so a hung connection cannot outlast the Lease.
        client=Client(timeout=httpx2.Timeout(settings.leader_election_lease_seconds / 3)),
        namespace=settings.leader_election_namespace,
        name="imagestream-operator",
        identity=f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        lease_seconds=settings.leader_election_lease_seconds,
        observer=health.lease_attempt,
    )


def _admission(settings: OperatorSettings, metrics: Metrics) -> tuple[WebhookServer, CertificateStore | None]:
    """The admission webhook server, and the store of its certificates unless cert-manager provides them."""
    import datetime  # noqa: PLC0415 - only needed with webhooks

    from lightkube import Client  # noqa: PLC0415

    from imagestreams.admission.certstore import CertificateStore, FileCertificates  # noqa: PLC0415
    from imagestreams.admission.routes import handlers  # noqa: PLC0415
    from imagestreams.admission.server import WebhookServer  # noqa: PLC0415

    kube = Client()
    store = None
    if settings.webhook_cert_dir:
        certificates: FileCertificates | CertificateStore = FileCertificates(settings.webhook_cert_dir)
    else:
        store = certificates = CertificateStore(
            kube,
            namespace=settings.webhook_namespace,
            secret=settings.webhook_secret,
            configuration=settings.webhook_configuration,
            hosts=settings.webhook_hosts,
            ca_lifetime=datetime.timedelta(seconds=settings.webhook_ca_seconds),
            serving_lifetime=datetime.timedelta(seconds=settings.webhook_cert_seconds),
            check_seconds=settings.webhook_check_seconds,
            ca_publish_seconds=settings.webhook_ca_publish_seconds,
        ).start()
    server = WebhookServer(
        certificates,
        handlers(kube, metrics.image_looked_up),
        settings.webhook_address,
        settings.webhook_port,
        metrics.admission_answered,
    )
    return server.start(), store


def _notifications(settings: OperatorSettings, metrics: Metrics) -> NotificationServer:
    """The push notification endpoint, with the tokens of its Secret."""
    from imagestreams.controller.notifications import NotificationServer, SecretTokens, secret_reader  # noqa: PLC0415

    namespace, name = settings.notifications_namespace, settings.notifications_secret
    tokens = SecretTokens(secret_reader(namespace, name), f"{namespace}/{name}")
    server = NotificationServer(
        tokens,
        settings.notifications_address,
        settings.notifications_port,
        rate=settings.notifications_rate,
        burst=settings.notifications_burst,
        observe=metrics.notification_received,
    )
    return server.start()


class _Servers:
    """The health and admission servers, started before the election: a standby answers its probes, scrapes and
    admission reviews too (the API server spreads webhook calls over the Service's endpoints)."""

    def __init__(self) -> None:
        self.health: HealthServer | None = None
        self.admission: tuple[WebhookServer, CertificateStore | None] | None = None
        self.notifications: NotificationServer | None = None

    def start(self, settings: OperatorSettings, health: Health, metrics: Metrics) -> str:
        """Start what the settings ask for; an error message (everything stopped again) if something cannot be."""
        try:
            if settings.health_port:
                self.health = HealthServer(health, metrics, settings.health_address, settings.health_port).start()
        except OSError as error:
            where = f"{settings.health_address}:{settings.health_port}"
            return f"cannot serve /healthz, /readyz and /metrics on {where}: {error}"
        try:
            if settings.webhook_port:
                self.admission = _admission(settings, metrics)
        except Exception as error:  # reported; exit code 2: nothing could be served
            self.stop()
            return f"cannot serve the admission webhooks on {settings.webhook_address}:{settings.webhook_port}: {error}"
        try:
            if settings.notifications_port:
                self.notifications = _notifications(settings, metrics)
        except Exception as error:  # reported; exit code 2
            self.stop()
            where = f"{settings.notifications_address}:{settings.notifications_port}"
            return f"cannot serve push notifications on {where}: {error}"
        return ""

    def stop(self) -> None:
        if self.notifications is not None:
            self.notifications.stop()
        if self.health is not None:
            self.health.stop()
        if self.admission is not None:
            webhooks, store = self.admission
            webhooks.stop()
            if store is not None:
                store.stop()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Until Kopf installs its own handler: a SIGTERM while waiting for (or just after winning) the Lease ends the
    # process through the `finally` that releases it, rather than leaving a held Lease to expire.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environ = dict(os.environ)
    for name in OperatorSettings.model_fields:
        value = getattr(args, name)
        if value is not None:
            environ[f"{ENV_PREFIX}{name.upper()}"] = value
    try:
        settings = OperatorSettings.from_env(environ)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Plain lines carry a timestamp, the logger and the level; JSON lines carry a timestamp and, for lines
    # about one object, its kind, namespace and name under "object".
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    logs.install(verbose=args.verbose)
    metrics = Metrics(process=True)
    metrics.set_build_info(os.environ.get(REVISION_VARIABLE, ""))
    health = Health(
        metrics, leader_election=settings.leader_election, lease_seconds=settings.leader_election_lease_seconds
    )
    servers = _Servers()
    problem = servers.start(settings, health, metrics)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    election = None
    try:
        if settings.leader_election:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
            election = _election(settings, health)
            health.standby()
            election.wait_until_leader()  # blocks until this replica holds the Lease
            health.starting()
            election.keep_renewing()
        import imagestreams.controller.handlers  # noqa: PLC0415 - registers the handlers with Kopf

        namespaces = list(settings.namespaces)
        # On SIGTERM Kopf stops the watches, runs the cleanup handler (which stops the import and trigger workers)
        # and returns: only then is the Lease released, so two replicas never act at once.
        # The settings reach the handlers through Kopf's memo, where the start-up handler builds the runtime.
        kopf.run(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=kopf.Memo(
                {
                    imagestreams.controller.handlers.SETTINGS: settings,
                    imagestreams.controller.handlers.METRICS: metrics,
                    imagestreams.controller.handlers.HEALTH: health,
                    imagestreams.controller.handlers.NOTIFICATIONS: servers.notifications,
                }
            ),
        )
    finally:
        health.stopping()
        if election is not None:
            election.release()
        servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
