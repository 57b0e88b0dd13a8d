"""The emulator's certificate authority: it vouches for the loopback names, and for no
other host, and its server key is never written to disk."""

from __future__ import annotations

import datetime as dt
import os
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from quickstart_helpers.emulator._tls import (
    HOSTS,
    LOOPBACK,
    LocalCertificate,
    _constrained,
    make_local_certificate,
)


def handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake in memory; raises ``ssl.SSLCertVerificationError`` if refused."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    done = {tls_client: False, tls_server: False}
    for _ in range(20):
        for side in done:
            try:
                side.do_handshake()
                done[side] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                if side is tls_client:
                    raise
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


@pytest.fixture(scope="module")
def certificate() -> LocalCertificate:
    return make_local_certificate()


@pytest.mark.parametrize("hostname", HOSTS)
def test_the_server_certificate_verifies_for_each_loopback_name(certificate, hostname) -> None:
    handshake(certificate.client_context(), certificate.server_context(), hostname)
    by_file = ssl.create_default_context(cafile=str(certificate.cert_file))  # SSL_CERT_FILE
    handshake(by_file, certificate.server_context(), hostname)


def test_the_server_certificate_does_not_verify_for_another_host(certificate) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(certificate.client_context(), certificate.server_context(), "example.com")


def test_the_only_key_kept_cannot_vouch_for_another_host(certificate, tmp_path) -> None:
    """The authority's key is forgotten once it has signed the server certificate; the
    server's key, the one key left, signs a certificate for example.com in vain."""
    chain = certificate._leaf.cert_chain_pems  # noqa: SLF001 - the server's certificate
    assert len(chain) == 1
    leaf = x509.load_pem_x509_certificate(chain[0].bytes())
    key = serialization.load_pem_private_key(certificate._leaf.private_key_pem.bytes(), None)  # noqa: SLF001
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    now = dt.datetime.now(dt.timezone.utc)
    forged_key = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")]))
        .issuer_name(leaf.subject)
        .public_key(forged_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.com")]), False)
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "forged.pem"
    pem.write_bytes(
        forged_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + forged.public_bytes(serialization.Encoding.PEM)
        + chain[0].bytes()
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pem)
    with pytest.raises(ssl.SSLCertVerificationError, match="invalid CA certificate"):
        handshake(certificate.client_context(), server, "example.com")


def test_the_folder_holds_the_public_certificate_only(tmp_path) -> None:
    mine = make_local_certificate(tmp_path / "mine")
    assert not (tmp_path / "mine").exists()  # nothing is written until a file is asked for
    mine.server_context()
    assert not (tmp_path / "mine").exists()
    text = mine.cert_file.read_text()
    assert [f.name for f in mine.cert_file.parent.iterdir()] == ["emulator-ca.pem"]
    assert text.count("BEGIN CERTIFICATE") == 1 and "PRIVATE KEY" not in text
    mine.cleanup()
    assert mine.cert_file.exists()  # a folder the caller chose is kept


def test_the_server_key_is_never_written_to_a_file(certificate, monkeypatch) -> None:
    """On Linux it reaches OpenSSL through an in-memory file; trustme's temporary file
    (its way to hand a key to ``ssl``) is not used."""

    def no_file(*args, **kwargs):
        raise AssertionError("the server key was about to be written to a file")

    monkeypatch.setattr(trustme, "NamedTemporaryFile", no_file)
    handshake(certificate.client_context(), certificate.server_context(), "127.0.0.1")


def test_without_an_in_memory_file_the_key_file_is_deleted_at_once(certificate, monkeypatch):
    written = []
    original = trustme.NamedTemporaryFile

    def remembered(*args, **kwargs):
        written.append(original(*args, **kwargs))
        return written[-1]

    monkeypatch.delattr(os, "memfd_create")
    monkeypatch.setattr(trustme, "NamedTemporaryFile", remembered)
    handshake(certificate.client_context(), certificate.server_context(), "localhost")
    assert len(written) == 1 and not Path(written[0].name).exists()


def test_the_authority_is_name_constrained_to_the_loopback_names() -> None:
    """Even with the authority's key, a certificate for another host fails verification
    against what we print: its name constraints permit only 127.0.0.1, ::1 and localhost."""
    printed = x509.load_pem_x509_certificate(make_local_certificate().ca_pem)
    constraints = printed.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and constraints.value == LOOPBACK
    ca = _constrained(trustme.CA(path_length=0))  # a constrained authority whose key we hold
    client = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    handshake(client, _serving(ca.issue_cert("127.0.0.1")), "127.0.0.1")
    for forged in ("generativelanguage.googleapis.com", "example.com"):
        with pytest.raises(ssl.SSLCertVerificationError, match="name constraint|permitted"):
            handshake(client, _serving(ca.issue_cert(forged)), forged)


def _serving(leaf: trustme.LeafCert) -> ssl.SSLContext:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server)
    return server
