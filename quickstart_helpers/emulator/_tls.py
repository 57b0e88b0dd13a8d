"""The emulator's throw-away certificate authority, made with ``trustme`` (the Live API
client always uses ``wss://`` with an API key, so the emulator speaks TLS).

:func:`make_local_certificate` makes an authority, issues one server certificate for
:data:`HOSTS`, then forgets the authority's key: trusting it trusts the emulator and no
other host; its name constraints (:data:`LOOPBACK`) would refuse any other name even if its
key were found. The server's private key never touches the disk (on Linux it reaches
OpenSSL through an in-memory file; elsewhere trustme's temporary file, deleted at once). The
authority's public certificate is written only when a client needs a file, in a private
temporary folder deleted by :meth:`LocalCertificate.cleanup`, garbage collection or exit."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import tempfile
import threading
import weakref
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

#: The names the server certificate is valid for.
HOSTS = ("127.0.0.1", "localhost", "::1")
#: What the authority may vouch for (RFC 5280 name constraints), checked by OpenSSL and Node.
LOOPBACK = x509.NameConstraints(
    permitted_subtrees=[
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    ],
    excluded_subtrees=None,
)


class LocalCertificate:
    """A one-use certificate authority's certificate (``ca_pem``, what clients trust)
    and the server certificate it issued."""

    def __init__(self, ca_pem: bytes, leaf: trustme.LeafCert, folder: Path | None) -> None:
        self.ca_pem, self._leaf, self._folder = ca_pem, leaf, folder
        self._file: Path | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    @property
    def cert_file(self) -> Path:
        """The authority's certificate as a PEM file, for ``SSL_CERT_FILE``,
        ``NODE_EXTRA_CA_CERTS`` or ``CURL_CA_BUNDLE`` (written on first use)."""
        with self._lock:
            if self._file is None:
                folder = self._folder or Path(tempfile.mkdtemp(prefix="gemini-emulator-"))
                if self._folder is None:
                    self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "emulator-ca.pem").write_bytes(self.ca_pem)
                self._file = folder / "emulator-ca.pem"
            return self._file

    def cleanup(self) -> None:
        """Delete :attr:`cert_file`'s temporary folder (not one you chose); safe twice."""
        if self._finalizer is not None:
            self._finalizer()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if not (hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")):  # not Linux
            self._leaf.configure_cert(ctx)  # trustme's temporary file, deleted at once
            return ctx
        fd = os.memfd_create("gemini-emulator-key")
        try:
            os.write(fd, self._leaf.private_key_and_cert_chain_pem.bytes())
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Return an ``ssl.SSLContext`` that trusts this authority only."""
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))


def make_local_certificate(
    folder: str | os.PathLike[str] | None = None, *, days: int = 7
) -> LocalCertificate:
    """Make a certificate authority and its server certificate for :data:`HOSTS`, valid
    for ``days``; :attr:`LocalCertificate.cert_file` is written in ``folder`` (kept), by
    default a private temporary folder (see :meth:`LocalCertificate.cleanup`)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca = _constrained(trustme.CA(path_length=0, organization_name="Gemini API emulator"))
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)
    leaf = ca.issue_cert(*HOSTS, not_before=start, not_after=end)
    return LocalCertificate(ca.cert_pem.bytes(), leaf, Path(folder) if folder else None)


def _constrained(ca: trustme.CA) -> trustme.CA:
    """``ca`` signed again with :data:`LOOPBACK` name constraints (trustme has no option)."""
    key_pem = ca.private_key_pem.bytes()
    key = serialization.load_pem_private_key(key_pem, None)
    cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    builder = x509.CertificateBuilder(
        cert.issuer, cert.subject, cert.public_key(), cert.serial_number,
        cert.not_valid_before_utc, cert.not_valid_after_utc,
    )  # fmt: skip
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    builder = builder.add_extension(LOOPBACK, critical=True)
    cert = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return trustme.CA.from_pem(cert.public_bytes(serialization.Encoding.PEM), key_pem)
