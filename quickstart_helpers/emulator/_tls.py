"""A throw-away TLS certificate for the local emulator.

The Live API client always connects with ``wss://`` when it uses an API key, so the
emulator must speak TLS. The certificate is made when the emulator starts, written to
a private temporary folder, and never stored in the repository. That folder is deleted
by :meth:`LocalCertificate.cleanup` (the emulator calls it when it stops), or at the
latest when the certificate is garbage-collected or the interpreter exits.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["LocalCertificate", "make_local_certificate"]


@dataclass(frozen=True)
class LocalCertificate:
    """A self-signed certificate for 127.0.0.1 and localhost.

    Attributes:
        cert_file: PEM certificate; give it to clients to trust (``SSL_CERT_FILE``).
        key_file: PEM private key, readable by the owner only.
    """

    cert_file: Path
    key_file: Path
    _finalizer: weakref.finalize | None = field(default=None, init=False, repr=False, compare=False)

    def cleanup(self) -> None:
        """Delete the temporary folder holding the files, if this module made it.

        A certificate written to a folder you chose is left alone. Safe to call twice;
        it also runs when the certificate is garbage-collected or Python exits.
        """
        if self._finalizer is not None:
            self._finalizer()

    def server_context(self) -> ssl.SSLContext:
        """Return an ``ssl.SSLContext`` for the server side."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Return an ``ssl.SSLContext`` that trusts this certificate only."""
        return ssl.create_default_context(cafile=str(self.cert_file))


def make_local_certificate(
    folder: str | os.PathLike[str] | None = None, *, days: int = 7
) -> LocalCertificate:
    """Create a self-signed certificate valid for ``127.0.0.1`` and ``localhost``.

    Args:
        folder: Where to write ``emulator-cert.pem`` and ``emulator-key.pem``.
            Defaults to a new private temporary folder, deleted by
            :meth:`LocalCertificate.cleanup`, on garbage collection or at exit.
        days: Validity in days from now. Defaults to 7.

    Returns:
        The paths of the certificate and key files.
    """
    out = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="gemini-emulator-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        certificate = _write_certificate(out, days)
    except BaseException:
        if not folder:
            shutil.rmtree(out, ignore_errors=True)
        raise
    if not folder:
        finalizer = weakref.finalize(certificate, shutil.rmtree, out, ignore_errors=True)
        object.__setattr__(certificate, "_finalizer", finalizer)
    return certificate


def _write_certificate(out: Path, days: int) -> LocalCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gemini API emulator")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = out / "emulator-cert.pem"
    key_file = out / "emulator-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return LocalCertificate(cert_file=cert_file, key_file=key_file)
