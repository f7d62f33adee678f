"""The CA, server certificate and node keys: what Flower reads, signed right, safe on disk."""

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from fedrec.shared.deploy import certs
from fedrec.shared.errors import CertError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    certs.make_ca(tmp_path / "ca")
    return tmp_path / "ca"


def test_ca_is_a_self_signed_ec_ca(ca_dir: Path) -> None:
    cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP384R1)
    assert cert.public_key() == key.public_key()
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)  # raises unless self-signed
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_server_cert_has_ip_and_dns_sans_and_is_signed_by_the_ca(
    ca_dir: Path, tmp_path: Path
) -> None:
    hosts = ["127.0.0.1", "localhost", "example.org", "::1", "127.0.0.1"]

    files = certs.make_server_cert(ca_dir, tmp_path / "server", hosts)

    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca_cert)  # issuer name and ECDSA signature
    certs.verify_signed_by(cert, ca_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "example.org"]
    assert files.hosts == ("127.0.0.1", "localhost", "example.org", "::1")
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert cert.public_key() == key.public_key()
    assert cert.not_valid_after_utc <= ca_cert.not_valid_after_utc


def test_a_certificate_of_another_ca_does_not_verify(ca_dir: Path, tmp_path: Path) -> None:
    certs.make_ca(tmp_path / "other-ca")
    files = certs.make_server_cert(tmp_path / "other-ca", tmp_path / "server", ["localhost"])
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())

    with pytest.raises(CertError, match="not signed by this CA"):
        certs.verify_signed_by(cert, ca_cert)


def test_node_keys_are_nist_ec_in_openssh_form(tmp_path: Path) -> None:
    nodes = certs.make_node_keys(tmp_path / "nodes", ["node-1", "silo.b"])

    assert [n.name for n in nodes] == ["node-1", "silo.b"]
    keys = []
    for node in nodes:
        # What `flwr supernode register` and flower-supernode call on these files.
        public = serialization.load_ssh_public_key(node.public_key.read_bytes())
        private = serialization.load_ssh_private_key(node.private_key.read_bytes(), None)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert isinstance(public.curve, ec.SECP384R1)
        assert private.public_key() == public
        assert node.public_key.read_text().startswith("ecdsa-sha2-nistp384 ")
        assert node.public_key.read_text().rstrip().endswith(f" {node.name}")
        keys.append(public)
    assert keys[0] != keys[1]


def test_keys_are_0600_certificates_0644_new_directories_0700(tmp_path: Path) -> None:
    ca = certs.make_ca(tmp_path / "a" / "ca")
    server = certs.make_server_cert(tmp_path / "a" / "ca", tmp_path / "server", ["10.0.0.5"])
    [node] = certs.make_node_keys(tmp_path / "nodes", ["n"])

    for key in (ca.key, server.key, node.private_key):
        assert _mode(key) == 0o600, key
    for public in (ca.cert, server.cert, node.public_key):
        assert _mode(public) == 0o644, public
    for folder in (tmp_path / "a", tmp_path / "a" / "ca", tmp_path / "server", tmp_path / "nodes"):
        assert _mode(folder) == 0o700, folder


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o755)
    out.chmod(0o755)

    certs.make_ca(out)

    assert _mode(out) == 0o755
    assert _mode(out / "ca.key") == 0o600


def test_refuses_to_overwrite_and_writes_nothing(ca_dir: Path, tmp_path: Path) -> None:
    before = (ca_dir / "ca.key").read_bytes()
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    (nodes / "b.pub").write_text("mine")

    with pytest.raises(CertError, match="refusing to overwrite .*ca.key"):
        certs.make_ca(ca_dir)
    with pytest.raises(CertError, match="--force"):
        certs.make_node_keys(nodes, ["a", "b"])

    assert (ca_dir / "ca.key").read_bytes() == before
    assert not (nodes / "a.key").exists()  # nothing written when anything would be replaced
    assert (nodes / "b.pub").read_text() == "mine"


def test_force_replaces_and_resets_the_mode(ca_dir: Path) -> None:
    before = (ca_dir / "ca.key").read_bytes()
    (ca_dir / "ca.key").chmod(0o644)

    certs.make_ca(ca_dir, force=True)

    assert (ca_dir / "ca.key").read_bytes() != before
    assert _mode(ca_dir / "ca.key") == 0o600


@pytest.mark.parametrize(
    "host",
    [
        "",
        "https://example.org",
        "example.org:9093",
        "[::1]",
        "bad host",
        "-leading.example",
        "a..b",
        "x" * 64 + ".org",
        "10.0.0.256/24",
    ],
)
def test_bad_hosts_are_refused_by_name(ca_dir: Path, tmp_path: Path, host: str) -> None:
    with pytest.raises(CertError, match="neither an IP address nor a DNS name"):
        certs.make_server_cert(ca_dir, tmp_path / "server", ["localhost", host])
    assert not (tmp_path / "server").exists()


def test_good_hosts() -> None:
    assert certs.san_for("10.0.0.5") == x509.IPAddress(ipaddress.ip_address("10.0.0.5"))
    assert certs.san_for("fe80::1") == x509.IPAddress(ipaddress.ip_address("fe80::1"))
    assert certs.san_for("SuperLink.Example.org.") == x509.DNSName("superlink.example.org")
    assert certs.san_for("*.example.org") == x509.DNSName("*.example.org")


def test_no_host_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CertError, match="no --host given"):
        certs.make_server_cert(ca_dir, tmp_path / "server", [])


def test_missing_ca_is_refused_with_the_command_that_makes_one(tmp_path: Path) -> None:
    with pytest.raises(CertError, match=r"ca.key and ca.crt missing.*fedrec certs ca --out"):
        certs.make_server_cert(tmp_path / "nowhere", tmp_path / "server", ["localhost"])


def test_a_ca_key_that_does_not_match_its_certificate_is_refused(
    ca_dir: Path, tmp_path: Path
) -> None:
    certs.make_ca(tmp_path / "other")
    (ca_dir / "ca.key").write_bytes((tmp_path / "other" / "ca.key").read_bytes())

    with pytest.raises(CertError, match="is not the private key of"):
        certs.load_ca(ca_dir)


def test_a_server_certificate_is_not_a_ca(ca_dir: Path, tmp_path: Path) -> None:
    files = certs.make_server_cert(ca_dir, tmp_path / "server", ["localhost"])
    (files.key.parent / "ca.key").write_bytes(files.key.read_bytes())
    (files.cert.parent / "ca.crt").write_bytes(files.cert.read_bytes())

    with pytest.raises(CertError, match="is not a CA certificate"):
        certs.load_ca(files.cert.parent)


def test_an_unreadable_ca_is_refused(ca_dir: Path) -> None:
    (ca_dir / "ca.crt").write_text("not a certificate")

    with pytest.raises(CertError, match="cannot be read"):
        certs.load_ca(ca_dir)


def test_out_that_is_a_file_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    with pytest.raises(CertError, match="not a directory"):
        certs.make_server_cert(ca_dir, tmp_path / "file", ["localhost"])


@pytest.mark.parametrize(
    ("names", "count", "needle"),
    [
        ([], None, "no nodes asked for"),
        (["a"], 2, "not both"),
        ([], 0, "at least 1"),
        (["../escape"], None, "not usable as a file name"),
        (["a", "b", "a"], None, "given twice: a"),
    ],
)
def test_bad_node_requests(names: list[str], count: int | None, needle: str) -> None:
    with pytest.raises(CertError, match=needle):
        certs.node_names(names, count)


def test_count_names_nodes_in_order() -> None:
    assert certs.node_names([], 3) == ["node-1", "node-2", "node-3"]


def test_days_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="--days"):
        certs.make_ca(tmp_path / "ca", days=0)
