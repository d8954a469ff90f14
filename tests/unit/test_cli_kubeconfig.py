"""Reading kubeconfigs as kubectl does: the files, the merge, the context's cluster and user, exec plugins' protocol,
proxies from the environment, and errors that never quote a kubeconfig."""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestreams.cli.clientconfig import (
    ClusterSettings,
    Impersonation,
    UserSettings,
    connection_for,
    environment_proxy,
    exec_cluster,
    parse_user,
    request_headers,
)
from imagestreams.cli.errors import CliError
from imagestreams.cli.execcredential import (
    V1,
    V1BETA1,
    CredentialError,
    ExecCredential,
    ExecPlugin,
    exec_info,
    is_expired,
    is_interactive,
    parse_exec_output,
    parse_exec_plugin,
)
from imagestreams.cli.kubeconfig import (
    in_cluster,
    kubeconfig_files,
    load_target,
    merge_kubeconfigs,
    read_kubeconfig,
    resolve_paths,
    select,
)


def config(name: str, server: str, *, current: str | None = None, namespace: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": "ca.crt"}}],
        "users": [
            {"name": name, "user": {"client-certificate": "c.crt", "client-key": "/abs/c.key", "tokenFile": "t"}}
        ],
        "contexts": [{"name": name, "context": context}],
    }
    if current:
        document["current-context"] = current
    return document


def test_relative_paths_are_made_relative_to_their_file() -> None:
    resolved = resolve_paths(config("a", "https://a"), Path("/etc/kube/one.yaml"))
    assert resolved["clusters"][0]["cluster"]["certificate-authority"] == "/etc/kube/ca.crt"
    user = resolved["users"][0]["user"]
    assert (user["client-certificate"], user["client-key"], user["tokenFile"]) == (
        "/etc/kube/c.crt",
        "/abs/c.key",
        "/etc/kube/t",
    )
    exec_user = {"users": [{"name": "x", "user": {"exec": {"command": "bin/helper", "apiVersion": "v1"}}}]}
    assert resolve_paths(exec_user, Path("/k/c.yaml"))["users"][0]["user"]["exec"]["command"] == "/k/bin/helper"
    on_path = {"users": [{"name": "x", "user": {"exec": {"command": "gke-auth", "apiVersion": "v1"}}}]}
    assert resolve_paths(on_path, Path("/k/c.yaml"))["users"][0]["user"]["exec"]["command"] == "gke-auth"


def test_the_first_file_wins_for_every_name_and_the_current_context() -> None:
    first = config("shared", "https://first", current="shared")
    second = config("shared", "https://second", current="other")
    second["contexts"].append({"name": "other", "context": {"cluster": "shared"}})
    merged = merge_kubeconfigs([(Path("/a/1"), first), (Path("/b/2"), second), (Path("/c/3"), None)])
    assert [c["cluster"]["server"] for c in merged["clusters"]] == ["https://first"]
    assert [c["name"] for c in merged["contexts"]] == ["shared", "other"]
    assert merged["current-context"] == "shared"
    later = merge_kubeconfigs([(Path("/a/1"), config("x", "https://x")), (Path("/b/2"), second)])
    assert later["current-context"] == "other"


def test_files_come_from_the_flag_the_variable_or_home(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("{}")
    two.write_text("{}")
    assert kubeconfig_files(str(one), f"{two}", tmp_path) == [one]
    with pytest.raises(CliError, match="no such file or directory"):
        kubeconfig_files(str(tmp_path / "missing"), None, tmp_path)
    # Missing and repeated entries of KUBECONFIG are skipped, as kubectl does.
    assert kubeconfig_files(None, f"{tmp_path / 'missing'}:{two}::{one}:{two}", tmp_path) == [two, one]
    assert kubeconfig_files(None, None, tmp_path) == []
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("{}")
    assert kubeconfig_files(None, None, tmp_path) == [tmp_path / ".kube" / "config"]


def test_namespace_comes_from_the_flag_then_the_context() -> None:
    merged = merge_kubeconfigs([(Path("/k"), config("a", "https://a", current="a", namespace="team"))])
    assert select(merged, None, None) == ("a", "team")
    assert select(merged, None, "mine") == ("a", "mine")
    plain = merge_kubeconfigs([(Path("/k"), config("a", "https://a", current="a"))])
    assert select(plain, None, None) == ("a", "default")
    with pytest.raises(CliError, match=r"^context was not found for specified context: zzz$"):
        select(merged, "zzz", None)
    with pytest.raises(CliError, match="no context is selected"):
        select(merge_kubeconfigs([(Path("/k"), config("a", "https://a"))]), None, None)


def test_load_target_merges_kubeconfig_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(yaml.safe_dump(config("a", "https://a:6443")))
    two.write_text(yaml.safe_dump(config("b", "https://b:6443", current="b", namespace="team")))
    monkeypatch.setenv("KUBECONFIG", f"{one}:{two}")
    target = load_target(None, None, None)
    assert (target.connection.context, target.connection.cluster.server, target.namespace) == (
        "b",
        "https://b:6443",
        "team",
    )
    assert target.connection.cluster.certificate_authority == str(tmp_path / "ca.crt")
    assert target.connection.user.token_file == str(tmp_path / "t")
    chosen = load_target(None, "a", None)
    assert (chosen.connection.cluster.server, chosen.namespace) == ("https://a:6443", "default")
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [")
    with pytest.raises(CliError) as caught:
        load_target(str(broken), None, None)
    problem = "line 1, column 12: expected the node content, but found '<stream end>'"
    assert str(caught.value) == f'error loading config file "{broken}": {problem}'


def test_no_kubeconfig_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(CliError, match="no kubeconfig found"):
        load_target(None, None, None)


def test_no_kubeconfig_in_a_pod_uses_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t\n")
    (tmp_path / "ca.crt").write_text("ca")
    (tmp_path / "namespace").write_text("ops\n")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    found = in_cluster(environ, tmp_path)
    assert found is not None
    connection, namespace = found
    assert (connection.cluster.server, connection.cluster.certificate_authority) == (
        "https://[fd00::1]:443",
        str(tmp_path / "ca.crt"),
    )
    assert (connection.user.token_file, connection.user.token, namespace) == (str(tmp_path / "token"), "", "ops")
    in_a_namespace = in_cluster({**environ, "POD_NAMESPACE": "mine"}, tmp_path)
    assert in_a_namespace is not None and in_a_namespace[1] == "mine"
    assert in_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path) is None


# --- YAML errors never quote the kubeconfig -------------------------------------------------------------------

SECRET = "s3cr3t-t0k3n-value"


@pytest.mark.parametrize(
    "text",
    [
        f"users:\n- name: a\n  user:\n    token: !{SECRET}\n",  # an unknown tag
        f"users:\n- name: a\n  user:\n    token: {SECRET}: x\n",  # a colon inside a plain value
        f"users:\n- name: a\n  user:\n    token: *{SECRET}\n",  # an undefined alias
        f'users:\n- name: a\n  user:\n    token: "{SECRET}\\q"\n',  # an unknown escape
        f"users:\n- name: a\n  user:\n\ttoken: {SECRET}\n",  # a tab for indentation
        f"users: [{{name: a, user: {{token: {SECRET}}}\n",  # unclosed flow collection
    ],
)
def test_a_yaml_error_names_the_line_but_never_quotes_it(tmp_path: Path, text: str) -> None:
    file = tmp_path / "config"
    file.write_text(text)
    with pytest.raises(CliError) as caught:
        read_kubeconfig(file)
    message = str(caught.value)
    assert message.startswith(f'error loading config file "{file}": line ')
    assert SECRET not in message and SECRET[:6] not in message
    assert "\n" not in message


def test_kubeconfig_files_that_are_not_kubeconfigs(tmp_path: Path) -> None:
    file = tmp_path / "config"
    file.write_bytes(b"token: \xff\xfe")
    with pytest.raises(CliError, match="not UTF-8"):
        read_kubeconfig(file)
    file.write_text("- a list\n")
    with pytest.raises(CliError, match=r"not a kubeconfig \(a mapping was expected\)$"):
        read_kubeconfig(file)
    file.write_text("users: nobody\n")
    with pytest.raises(CliError, match=r"users must be a list$"):
        read_kubeconfig(file)
    file.write_text("")
    assert read_kubeconfig(file) is None
    with pytest.raises(CliError, match=r"error loading config file .*: Is a directory"):
        read_kubeconfig(tmp_path)


# --- exec plugin entries --------------------------------------------------------------------------------------


def test_exec_entries_are_checked_as_clientcmd_checks_them() -> None:
    beta = parse_exec_plugin("u", {"command": "p", "apiVersion": V1BETA1})
    assert beta.interactive_mode == "IfAvailable"  # v1beta1's default
    with pytest.raises(CliError, match=r"^interactiveMode must be specified for u to use exec authentication plugin$"):
        parse_exec_plugin("u", {"command": "p", "apiVersion": V1})
    full = parse_exec_plugin(
        "u",
        {
            "command": "p",
            "apiVersion": V1,
            "args": ["get-token", "--cluster=x"],
            "env": [{"name": "A", "value": "1"}, {"name": "B"}],
            "interactiveMode": "Never",
            "provideClusterInfo": True,
            "installHint": "\x1b[31mbrew install p\x1b[0m",
        },
    )
    assert full == ExecPlugin(
        command="p",
        api_version=V1,
        args=("get-token", "--cluster=x"),
        env=(("A", "1"), ("B", "")),
        interactive_mode="Never",
        provide_cluster_info=True,
        install_hint="brew install p",
    )
    alpha = {"command": "p", "apiVersion": "client.authentication.k8s.io/v1alpha1"}
    with pytest.raises(CliError, match=r'^exec plugin: invalid apiVersion "client.authentication.k8s.io/v1alpha1"$'):
        parse_exec_plugin("u", alpha)
    with pytest.raises(CliError, match=r'^invalid interactiveMode for u: "Sometimes"$'):
        parse_exec_plugin("u", {"command": "p", "apiVersion": V1, "interactiveMode": "Sometimes"})
    with pytest.raises(CliError, match=r"^command must be specified for u"):
        parse_exec_plugin("u", {"apiVersion": V1, "interactiveMode": "Never"})
    with pytest.raises(CliError, match=r"^env variable name must be specified for u"):
        parse_exec_plugin("u", {"command": "p", "apiVersion": V1BETA1, "env": [{"value": "x"}]})


def test_interactive_mode_decides_who_gets_standard_input() -> None:
    assert [is_interactive(mode, True) for mode in ("Never", "IfAvailable", "Always")] == [False, True, True]
    assert [is_interactive(mode, False) for mode in ("Never", "IfAvailable")] == [False, False]
    with pytest.raises(CliError, match="cannot support interactive mode: standard input is not a terminal"):
        is_interactive("Always", False)


def test_exec_info_carries_the_cluster_only_when_asked() -> None:
    # client-go's own test vector (exec_test.go, "beta-with-cluster-and-provide-cluster-info-is-serialized").
    cluster = ClusterSettings(
        name="c",
        server="foo",
        certificate_authority_data=b"baz",
        tls_server_name="bar",
        exec_config={"apiVersion": "group/v1", "kind": "PluginConfig", "spec": {"audience": "snorlax"}},
    )
    plugin = ExecPlugin(command="p", api_version=V1BETA1, provide_cluster_info=True)
    assert json.loads(exec_info(plugin, exec_cluster(cluster, cluster.certificate_authority_data), False)) == {
        "kind": "ExecCredential",
        "apiVersion": V1BETA1,
        "spec": {
            "cluster": {
                "server": "foo",
                "tls-server-name": "bar",
                "certificate-authority-data": "YmF6",
                "config": {"apiVersion": "group/v1", "kind": "PluginConfig", "spec": {"audience": "snorlax"}},
            },
            "interactive": False,
        },
    }
    unasked = ExecPlugin(command="p", api_version=V1)
    assert json.loads(exec_info(unasked, exec_cluster(cluster, b"baz"), True)) == {
        "kind": "ExecCredential",
        "apiVersion": V1,
        "spec": {"interactive": True},
    }
    everything = ClusterSettings(
        name="c",
        server="https://k",
        insecure_skip_tls_verify=True,
        proxy_url="http://proxy:3128",
        disable_compression=True,
    )
    assert exec_cluster(everything, None) == {
        "server": "https://k",
        "insecure-skip-tls-verify": True,
        "proxy-url": "http://proxy:3128",
        "disable-compression": True,
    }


# --- what plugins return --------------------------------------------------------------------------------------


def credential(api_version: str, status: Any, kind: str = "ExecCredential") -> bytes:
    return json.dumps({"kind": kind, "apiVersion": api_version, "status": status}).encode()


def test_each_credential_shape_of_each_version() -> None:
    for version in (V1, V1BETA1):
        assert parse_exec_output(version, credential(version, {"token": "t"})) == ExecCredential(token="t")
        pair = parse_exec_output(version, credential(version, {"clientCertificateData": "C", "clientKeyData": "K"}))
        assert (pair.client_pair, pair.token) == (("C", "K"), "")
    both = parse_exec_output(V1, credential(V1, {"token": "t", "clientCertificateData": "C", "clientKeyData": "K"}))
    assert (both.token, both.client_pair) == ("t", ("C", "K"))
    timed = parse_exec_output(V1, credential(V1, {"token": "t", "expirationTimestamp": "2030-01-02T03:04:05Z"}))
    assert timed.expires == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    fraction = parse_exec_output(
        V1, credential(V1, {"token": "t", "expirationTimestamp": "2030-01-02T03:04:05.5+02:00"})
    )
    assert fraction.expires == datetime.datetime(2030, 1, 2, 1, 4, 5, 500000, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (credential(V1BETA1, {"token": SECRET}), f"^exec plugin is configured to use API version {V1}, plugin "),
        (credential(V1, {"token": SECRET}, kind="Secret"), "^decoding stdout: kind is not ExecCredential$"),
        (json.dumps({"kind": "ExecCredential", "apiVersion": V1}).encode(), "didn't return a status field$"),
        (credential(V1, {}), "^exec plugin didn't return a token or cert/key pair$"),
        (credential(V1, {"clientCertificateData": SECRET}), "^exec plugin returned only certificate or key, not both$"),
        (credential(V1, {"clientKeyData": SECRET}), "^exec plugin returned only certificate or key, not both$"),
        (credential(V1, {"token": 7}), r"^decoding stdout: status.token is not a string$"),
        (credential(V1, {"token": SECRET, "expirationTimestamp": "tomorrow"}), "not an RFC 3339 time$"),
        (credential(V1, {"token": SECRET, "expirationTimestamp": "2030-01-02T03:04:05"}), "has no time zone$"),
        (f"token={SECRET}".encode(), "^decoding stdout: invalid JSON at character 0$"),
        (b"\xff" + SECRET.encode(), "^decoding stdout: not UTF-8 text$"),
        (json.dumps([SECRET]).encode(), "^decoding stdout: not a JSON object$"),
    ],
)
def test_a_bad_answer_is_named_without_quoting_it(output: bytes, message: str) -> None:
    with pytest.raises(CredentialError, match=message) as caught:
        parse_exec_output(V1, output)
    assert SECRET not in str(caught.value)


def test_a_credential_expires_after_its_timestamp_and_never_without_one() -> None:
    now = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    second = datetime.timedelta(seconds=1)
    assert not is_expired(ExecCredential(token="t"), now)
    assert not is_expired(ExecCredential(token="t", expires=now + second), now)
    assert not is_expired(ExecCredential(token="t", expires=now), now)  # client-go: expired only once now is after
    assert is_expired(ExecCredential(token="t", expires=now - second), now)


def test_credentials_never_show_in_a_repr() -> None:
    user = parse_user(
        "u",
        {
            "token": SECRET,
            "client-certificate-data": base64.b64encode(b"c").decode(),
            "client-key-data": base64.b64encode(SECRET.encode()).decode(),
        },
    )
    answer = parse_exec_output(
        V1, credential(V1, {"token": SECRET, "clientCertificateData": "C", "clientKeyData": SECRET})
    )
    plugin = parse_exec_plugin("u", {"command": "p", "apiVersion": V1BETA1, "env": [{"name": "T", "value": SECRET}]})
    assert SECRET not in repr(user) + repr(answer) + repr(plugin)


# --- clusters and users ---------------------------------------------------------------------------------------


def kubeconfig(cluster: dict[str, Any], user: dict[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "clusters": [{"name": "c", "cluster": cluster}],
        "contexts": [{"name": "x", "context": {"cluster": "c", **({"user": "u"} if user is not None else {})}}],
        "users": [{"name": "u", "user": user}] if user is not None else [],
    }
    return merge_kubeconfigs([(Path("/k/config"), document)])


def test_cluster_settings() -> None:
    ca = base64.b64encode(b"PEM").decode()
    extension = {"audience": "k"}
    cluster = connection_for(
        kubeconfig(
            {
                "server": "https://k:6443",
                "certificate-authority-data": ca,
                "tls-server-name": "kubernetes",
                "proxy-url": "http://user:pw@proxy:3128",
                "disable-compression": True,
                "extensions": [
                    {"name": "other", "extension": {}},
                    {"name": "client.authentication.k8s.io/exec", "extension": extension},
                ],
            }
        ),
        "x",
    ).cluster
    assert cluster == ClusterSettings(
        name="c",
        server="https://k:6443",
        certificate_authority_data=b"PEM",
        tls_server_name="kubernetes",
        proxy_url="http://user:pw@proxy:3128",
        disable_compression=True,
        exec_config=extension,
    )
    # A bare host:port gets https when TLS is configured, else http (client-go's DefaultServerURL).
    assert connection_for(kubeconfig({"server": "k:6443", "insecure-skip-tls-verify": True}), "x").cluster.server == (
        "https://k:6443"
    )
    assert connection_for(kubeconfig({"server": "k:8080"}), "x").cluster.server == "http://k:8080"
    # Relative file names are the kubeconfig file's.
    assert connection_for(kubeconfig({"server": "https://k", "certificate-authority": "ca.pem"}), "x").cluster == (
        ClusterSettings(name="c", server="https://k", certificate_authority="/k/ca.pem")
    )


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({}, '^no server found for cluster "c"$'),
        ({"server": "ftp://k"}, 'the server of cluster "c" must be an http or https URL$'),
        ({"server": "https://k", "certificate-authority-data": "not base64!"}, "is not valid base64$"),
        (
            {"server": "https://k", "certificate-authority": "/ca", "certificate-authority-data": "UEVN"},
            "^certificate-authority-data and certificate-authority are both specified for c$",
        ),
        (
            {"server": "https://k", "certificate-authority": "/ca", "insecure-skip-tls-verify": True},
            "specifying a root certificates file with the insecure flag is not allowed$",
        ),
        ({"server": "https://k", "insecure-skip-tls-verify": "yes"}, "must be true or false$"),
        ({"server": "https://k", "tls-server-name": 5}, '^tls-server-name of cluster "c" must be a string$'),
        (
            {"server": "https://k", "proxy-url": f"socks5://u:{SECRET}@proxy:1080"},
            r"^invalid 'proxy-url' \"socks5://<redacted>@proxy:1080\" for cluster \"c\": socks5 proxies are not",
        ),
        ({"server": "https://k", "proxy-url": "ftp://proxy"}, 'unsupported scheme "ftp", must be http or https$'),
        ({"server": "https://k", "proxy-url": "http://proxy:port"}, "could not parse it$"),
    ],
)
def test_cluster_settings_kubectl_refuses(cluster: dict[str, Any], message: str) -> None:
    with pytest.raises(CliError, match=message) as caught:
        connection_for(kubeconfig(cluster), "x")
    assert SECRET not in str(caught.value)


def test_user_settings() -> None:
    cert, key = base64.b64encode(b"C").decode(), base64.b64encode(b"K").decode()
    user = connection_for(
        kubeconfig(
            {"server": "https://k"},
            {
                "token": "t",
                "tokenFile": "/ignored/when/a/token/is/set",
                "client-certificate-data": cert,
                "client-key-data": key,
                "as": "jane",
                "as-uid": "42",
                "as-groups": ["a", "b"],
                "as-user-extra": {"reason/why": ["audit"]},
                "exec": {"command": "p", "apiVersion": V1BETA1},
            },
        ),
        "x",
    ).user
    assert (user.token, user.token_file, user.client_certificate_data, user.client_key_data) == ("t", None, b"C", b"K")
    assert user.impersonation == Impersonation("jane", "42", ("a", "b"), (("reason/why", ("audit",)),))
    assert user.exec_plugin is not None and not user.runs_exec_plugin  # client-go: the kubeconfig's own win
    only_exec = connection_for(
        kubeconfig({"server": "https://k"}, {"exec": {"command": "p", "apiVersion": V1BETA1}}), "x"
    )
    assert only_exec.user.runs_exec_plugin
    # Over plain http client-go reads no credentials at all, so none are sent in clear text; impersonation stays.
    plain = connection_for(kubeconfig({"server": "http://k"}, {"token": "t", "as": "jane"}), "x").user
    assert (plain.token, plain.impersonation) == ("", Impersonation("jane"))
    # No user in the context, or a user not defined anywhere: anonymous, as in kubectl.
    assert connection_for(kubeconfig({"server": "https://k"}), "x").user == UserSettings()


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (
            {"token": SECRET, "username": "u", "password": SECRET},
            r"^more than one authentication method found for u; found \[token basicAuth\], only one is allowed$",
        ),
        ({"client-certificate": "/c"}, "^client-key-data or client-key must be specified for u "),
        ({"client-certificate": "/c", "client-certificate-data": "Qw==", "client-key": "/k"}, "both specified for u$"),
        (
            {"auth-provider": {"name": "oidc", "config": {"id-token": SECRET}}},
            'auth-provider "oidc" of user "u" is not',
        ),
        ({"as-groups": ["g"]}, "^requesting uid, groups or user-extra for u without impersonating a user$"),
        ({"exec": "p"}, "^exec for u must be a mapping$"),
        ({"token": ["t"]}, '^token of user "u" must be a string$'),
    ],
)
def test_user_settings_kubectl_refuses(user: dict[str, Any], message: str) -> None:
    with pytest.raises(CliError, match=message) as caught:
        connection_for(kubeconfig({"server": "https://k"}, user), "x")
    assert SECRET not in str(caught.value)


def test_a_context_must_name_a_known_cluster() -> None:
    document = merge_kubeconfigs([(Path("/k"), {"contexts": [{"name": "x", "context": {"cluster": "gone"}}]})])
    with pytest.raises(CliError, match=r'^cluster "gone" was not found for context "x"$'):
        connection_for(document, "x")
    bare = merge_kubeconfigs([(Path("/k"), {"contexts": [{"name": "x", "context": {"user": "u"}}]})])
    with pytest.raises(CliError, match=r'^cluster was not specified for context "x"$'):
        connection_for(bare, "x")


# --- proxies from the environment -----------------------------------------------------------------------------


def test_environment_proxies_follow_go() -> None:
    proxy = {"HTTPS_PROXY": "proxy:3128", "https_proxy": "http://lower:1", "HTTP_PROXY": "http://plain:8080"}
    assert environment_proxy("https://k.example:6443", proxy) == "http://proxy:3128"  # upper case first, scheme added
    assert environment_proxy("http://k.example", proxy) == "http://plain:8080"
    assert environment_proxy("https://k.example", {}) is None
    for loopback in ("https://localhost:6443", "https://127.0.0.1:6443", "https://[::1]:6443", "https://127.9.9.9"):
        assert environment_proxy(loopback, proxy) is None  # Go never proxies loopback
    for no_proxy, bypassed in [
        ("*", True),
        ("example", True),  # a domain matches itself and its subdomains
        (".example", True),
        ("k.example", True),
        (".k.example", False),  # a leading dot: subdomains only
        ("*.k.example", False),
        ("other.example", False),
        ("k.example:6443", True),
        ("k.example:443", False),
        (" other , K.EXAMPLE ", True),
    ]:
        found = environment_proxy("https://k.example:6443", {**proxy, "NO_PROXY": no_proxy})
        assert (found is None) == bypassed, no_proxy
    for no_proxy, bypassed in [("10.1.2.3", True), ("10.0.0.0/8", True), ("10.1.2.3:443", True), ("10.9.9.9", False)]:
        found = environment_proxy("https://10.1.2.3", {**proxy, "no_proxy": no_proxy})
        assert (found is None) == bypassed, no_proxy


def test_request_headers() -> None:
    cluster = ClusterSettings(name="c", server="https://k")
    assert request_headers(UserSettings(), cluster, "") == []
    assert request_headers(UserSettings(username="u", password="p"), cluster, "") == [("Authorization", "Basic dTpw")]
    who = Impersonation("jane", "42", ("a", "b"), (("reason/why", ("audit", "x")),))
    quiet = ClusterSettings(name="c", server="https://k", disable_compression=True)
    assert request_headers(UserSettings(impersonation=who), quiet, "tok") == [
        ("Authorization", "Bearer tok"),
        ("Impersonate-User", "jane"),
        ("Impersonate-Uid", "42"),
        ("Impersonate-Group", "a"),
        ("Impersonate-Group", "b"),
        ("Impersonate-Extra-reason%2Fwhy", "audit"),
        ("Impersonate-Extra-reason%2Fwhy", "x"),
        ("Accept-Encoding", "identity"),
    ]


# --- any shape a kubeconfig may take ends in CliError, never another exception ---------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(["x", "u", "c"])
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
_cluster_fields = st.fixed_dictionaries(
    {},
    optional={
        key: _values | st.text(max_size=20)
        for key in (
            "server",
            "certificate-authority",
            "certificate-authority-data",
            "insecure-skip-tls-verify",
            "tls-server-name",
            "proxy-url",
            "disable-compression",
        )
    }
    | {"extensions": _values | st.lists(st.fixed_dictionaries({}, optional={"name": _values, "extension": _values}))},
)
_exec_fields = st.fixed_dictionaries(
    {},
    optional={
        "command": _values | st.just("plugin"),
        "apiVersion": _values | st.sampled_from([V1, V1BETA1]),
        "args": _values,
        "env": _values | st.lists(st.fixed_dictionaries({}, optional={"name": _values, "value": _values})),
        "interactiveMode": _values | st.sampled_from(["Never", "IfAvailable", "Always"]),
        "provideClusterInfo": _values,
        "installHint": _values,
    },
)
_user_fields = st.fixed_dictionaries(
    {},
    optional={
        "exec": _exec_fields | _values,
        "as-user-extra": _values | st.dictionaries(st.text(max_size=4), _values, max_size=2),
        "auth-provider": _values | st.fixed_dictionaries({}, optional={"name": _values}),
    }
    | {
        key: _values
        for key in (
            "token",
            "tokenFile",
            "username",
            "password",
            "client-certificate",
            "client-certificate-data",
            "client-key",
            "client-key-data",
            "as",
            "as-uid",
            "as-groups",
        )
    },
)


@settings(max_examples=150, deadline=None)
@given(
    cluster=_cluster_fields | _values,
    user=_user_fields | _values,
    context=st.fixed_dictionaries(
        {}, optional={"cluster": _values | st.just("c"), "user": _values | st.just("u"), "namespace": _values}
    )
    | _values,
    current=_values | st.just("x"),
)
def test_any_kubeconfig_shape_ends_in_a_cli_error(cluster: Any, user: Any, context: Any, current: Any) -> None:
    document = {
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": context}],
        "current-context": current,
    }
    try:
        merged = merge_kubeconfigs([(Path("/k/config"), document)])
        name, _ = select(merged, None, None)
        connection_for(merged, name)
    except CliError:
        pass


@settings(max_examples=150, deadline=None)
@given(entry=_exec_fields)
def test_any_exec_entry_ends_in_a_cli_error(entry: dict[str, Any]) -> None:
    with contextlib.suppress(CliError):
        parse_exec_plugin("u", entry)


@settings(max_examples=150, deadline=None)
@given(cluster=_cluster_fields, user=_user_fields)
def test_any_cluster_or_user_entry_ends_in_a_cli_error(cluster: dict[str, Any], user: dict[str, Any]) -> None:
    with contextlib.suppress(CliError):
        connection_for(kubeconfig(cluster, user), "x")
