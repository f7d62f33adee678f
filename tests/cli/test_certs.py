"""`fedrec certs ca | server | node` through typer's runner: files written, errors explained."""

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from fedrec.cli.main import app
from fedrec.shared.errors import CertError

runner = CliRunner()


def test_ca_server_node_write_what_flower_reads(tmp_path: Path) -> None:
    ca, server, nodes = tmp_path / "ca", tmp_path / "server", tmp_path / "nodes"

    out_ca = runner.invoke(app, ["certs", "ca", "--out", str(ca)])
    out_server = runner.invoke(
        app,
        ["certs", "server", "--ca", str(ca), "--out", str(server)]
        + ["--host", "127.0.0.1", "--host", "localhost", "--host", "example.org"],
    )
    out_nodes = runner.invoke(app, ["certs", "node", "--out", str(nodes), "--count", "2"])
    out_named = runner.invoke(
        app, ["certs", "node", "--out", str(nodes), "--name", "silo-a", "--name", "silo-b"]
    )

    for out in (out_ca, out_server, out_nodes, out_named):
        assert out.exit_code == 0, out.output
    assert "--ssl-ca-certfile" in out_ca.output and "--root-certificates" in out_ca.output
    assert "--ssl-certfile" in out_server.output and "example.org" in out_server.output
    assert "flwr supernode register" in out_nodes.output
    cert = x509.load_pem_x509_certificate((server / "server.crt").read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes()))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "example.org"]
    for name in ("node-1", "node-2", "silo-a", "silo-b"):
        serialization.load_ssh_public_key((nodes / f"{name}.pub").read_bytes())
        assert stat.S_IMODE((nodes / f"{name}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(nodes.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["certs", "server", "--ca", "{tmp}/none", "--host", "h", "--out", "{tmp}/s"], "no CA"),
        (
            ["certs", "server", "--ca", "{tmp}/ca", "--host", "h:1", "--out", "{tmp}/s"],
            "neither an IP address nor a DNS name",
        ),
        (["certs", "ca", "--out", "{tmp}/ca"], "refusing to overwrite"),
        (["certs", "node", "--out", "{tmp}/n"], "--name NAME"),
    ],
)
def test_bad_input_raises_the_domain_error(tmp_path: Path, args: list[str], needle: str) -> None:
    # main() turns a FedRecError into one line and exit 2 (tests/cli/test_cli.py runs that).
    assert runner.invoke(app, ["certs", "ca", "--out", str(tmp_path / "ca")]).exit_code == 0

    out = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])

    assert isinstance(out.exception, CertError), out.output
    assert needle in str(out.exception)


def test_force_replaces(tmp_path: Path) -> None:
    runner.invoke(app, ["certs", "ca", "--out", str(tmp_path)])
    before = (tmp_path / "ca.crt").read_bytes()

    out = runner.invoke(app, ["certs", "ca", "--out", str(tmp_path), "--force"])

    assert out.exit_code == 0, out.output
    assert (tmp_path / "ca.crt").read_bytes() != before


def test_server_needs_a_host(tmp_path: Path) -> None:
    out = runner.invoke(app, ["certs", "server", "--ca", str(tmp_path), "--out", str(tmp_path)])

    assert out.exit_code == 2  # typer's usage error: --host is required
    assert "--host" in out.output
