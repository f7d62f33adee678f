"""A private CA, the SuperLink's TLS certificate and SuperNode key pairs, in the files Flower reads.

Three jobs, one per ``fedrec certs`` command:

- :func:`make_ca`: an EC key and a self-signed CA certificate (``ca.key``, ``ca.crt``); ``ca.crt``
  is what SuperNodes and ``flwr`` get as root certificate, ``ca.key`` stays offline.
- :func:`make_server_cert`: the SuperLink's key and certificate (``server.key``, ``server.crt``),
  signed by that CA, with one subject-alternative name per host (IP SANs for addresses, DNS
  SANs for names) — the names clients dial, and 127.0.0.1 for the SuperLink's own ServerApp
  process, which connects back over TLS.
- :func:`make_node_keys`: per-SuperNode EC key pairs: ``NAME.key`` (OpenSSH private key, for
  ``flower-supernode --auth-supernode-private-key``) and ``NAME.pub`` (OpenSSH public key, for
  ``flwr supernode register``). Flower accepts NIST curves only for node authentication.

Keys are written 0600, certificates and public keys 0644, new directories 0700. Nothing is
overwritten unless ``force=True``; when anything would be, nothing is written at all.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedrec.shared.errors import CertError

CA_KEY = "ca.key"
CA_CERT = "ca.crt"
SERVER_KEY = "server.key"
SERVER_CERT = "server.crt"

# P-384: the curve Flower's `flwr supernode register` names; also fine for TLS.
CURVE: type[ec.EllipticCurve] = ec.SECP384R1
KEY_MODE = 0o600
PUBLIC_MODE = 0o644
DIR_MODE = 0o700
# Tolerates clocks a little behind the one that signed.
_BACKDATE = dt.timedelta(minutes=5)

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class CaFiles:
    """Where :func:`make_ca` wrote the CA."""

    key: Path
    cert: Path


@dataclass(frozen=True)
class ServerFiles:
    """Where :func:`make_server_cert` wrote the SuperLink's key and certificate."""

    key: Path
    cert: Path
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class NodeFiles:
    """One SuperNode's key pair."""

    name: str
    private_key: Path
    public_key: Path


# ---------------------------------------------------------------- input checks


def san_for(host: str) -> x509.GeneralName:
    """The subject-alternative name for ``host``: an IP SAN for an address, else a DNS SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if labels and labels[0] == "*":  # a wildcard covers one leftmost label only
        labels = labels[1:]
    if not name or len(name) > 253 or not labels or not all(map(_DNS_LABEL.match, labels)):
        raise CertError(
            f"--host {host!r} is neither an IP address nor a DNS name: give the bare name or "
            "address clients dial, without scheme, port or brackets (e.g. 10.0.0.5, ::1, "
            "superlink.example.org)"
        )
    return x509.DNSName(name.lower())


def node_names(names: Sequence[str], count: int | None) -> list[str]:
    """The node names to generate: ``names`` as given, or ``node-1`` … ``node-COUNT``."""
    if names and count is not None:
        raise CertError("give node names (--name) or a number of nodes (--count), not both")
    if count is not None:
        if count < 1:
            raise CertError(f"--count must be at least 1, got {count}")
        return [f"node-{k}" for k in range(1, count + 1)]
    if not names:
        raise CertError("no nodes asked for: give --name NAME (repeatable) or --count N")
    for name in names:
        if not _NODE_NAME.match(name):
            raise CertError(
                f"node name {name!r} is not usable as a file name: use letters, digits, "
                "'.', '_' and '-' (at most 64, starting with a letter or digit)"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CertError(f"node names given twice: {', '.join(duplicates)}")
    return list(names)


# ---------------------------------------------------------------- the three jobs


def make_ca(
    out: Path, *, common_name: str = "fedrec deployment CA", days: int = 3650, force: bool = False
) -> CaFiles:
    """A new CA key and self-signed CA certificate in ``out`` (``ca.key``, ``ca.crt``)."""
    _check_days(days)
    files = CaFiles(key=out / CA_KEY, cert=out / CA_CERT)
    _refuse_overwrite([files.key, files.cert], force=force)
    key = ec.generate_private_key(CURVE())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = _now() - _BACKDATE
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        # Signs server certificates only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA384())
    )
    _make_dir(out)
    _write(files.key, _private_pem(key), KEY_MODE)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return files


def make_server_cert(
    ca_dir: Path,
    out: Path,
    hosts: Sequence[str],
    *,
    days: int = 365,
    force: bool = False,
) -> ServerFiles:
    """The SuperLink's key and certificate in ``out``, signed by the CA in ``ca_dir``.

    ``hosts`` become the certificate's subject-alternative names, in order, duplicates dropped.
    """
    _check_days(days)
    if not hosts:
        raise CertError(
            "no --host given: name every address or DNS name clients use to reach the "
            "SuperLink, and 127.0.0.1 (its own ServerApp process connects back over TLS)"
        )
    unique = tuple(dict.fromkeys(hosts))
    sans = [san_for(h) for h in unique]
    ca_key, ca_cert = load_ca(ca_dir)
    files = ServerFiles(key=out / SERVER_KEY, cert=out / SERVER_CERT, hosts=unique)
    _refuse_overwrite([files.key, files.cert], force=force)
    key = ec.generate_private_key(CURVE())
    start = _now() - _BACKDATE
    not_after = min(start + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedrec SuperLink")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )
    _make_dir(out)
    _write(files.key, _private_pem(key), KEY_MODE)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return files


def make_node_keys(out: Path, names: Iterable[str], *, force: bool = False) -> list[NodeFiles]:
    """One EC key pair per node name in ``out``: ``NAME.key`` and ``NAME.pub`` (OpenSSH)."""
    nodes = [
        NodeFiles(n, out / f"{n}.key", out / f"{n}.pub") for n in node_names(list(names), None)
    ]
    _refuse_overwrite([p for n in nodes for p in (n.private_key, n.public_key)], force=force)
    _make_dir(out)
    for node in nodes:
        key = ec.generate_private_key(CURVE())
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),  # flower-supernode reads it without a passphrase
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        _write(node.private_key, private, KEY_MODE)
        _write(node.public_key, public + f" {node.name}\n".encode(), PUBLIC_MODE)
    return nodes


def load_ca(ca_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA key and certificate in ``ca_dir``, checked to belong together."""
    key_path, cert_path = ca_dir / CA_KEY, ca_dir / CA_CERT
    missing = [p.name for p in (key_path, cert_path) if not p.is_file()]
    if missing:
        raise CertError(
            f"no CA in {ca_dir} ({' and '.join(missing)} missing): make one with "
            f"`fedrec certs ca --out {ca_dir}`"
        )
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (ValueError, TypeError) as err:
        raise CertError(f"the CA in {ca_dir} cannot be read ({err})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertError(f"{key_path} is not the private key of {cert_path}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertError(f"{cert_path} is not a CA certificate made by `fedrec certs ca`")
    return key, cert


def verify_signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    """Raise :class:`CertError` unless ``cert`` is issued and signed by ``ca_cert``."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as err:
        raise CertError(f"the certificate is not signed by this CA ({err!r})") from None


# ---------------------------------------------------------------- files


def _refuse_overwrite(paths: Sequence[Path], *, force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise CertError(
            f"refusing to overwrite {', '.join(existing)}: move them away, pick another "
            "--out, or pass --force to replace them"
        )


def _make_dir(path: Path) -> None:
    """Create ``path`` and its missing parents 0700; an existing directory keeps its mode."""
    if path.is_dir():
        return
    if path.exists():
        raise CertError(f"--out {path} exists and is not a directory")
    missing = [path, *(p for p in path.parents if not p.exists())]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except OSError as err:
            raise CertError(f"cannot create {folder}: {err}") from None
        folder.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the start, so a key is never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, mode)  # an overwritten file (--force) keeps its old mode otherwise
        f.write(data)


# ---------------------------------------------------------------- small helpers


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # the SuperLink reads it without a passphrase
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _check_days(days: int) -> None:
    if days < 1:
        raise CertError(f"--days must be at least 1, got {days}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
