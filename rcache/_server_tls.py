"""Throwaway TLS material for private Redis servers, made with the ``openssl`` command line."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TLSFiles", "generate_tls_files"]

_OPENSSL_CONF = """\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = rcache throwaway CA

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class TLSFiles:
    """Paths of a CA certificate and of a certificate/key pair signed by that CA (PEM)."""

    ca_cert: Path
    cert: Path
    key: Path


def _run(openssl: str, *args: str, cwd: Path) -> None:
    try:
        subprocess.run(
            [openssl, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError as exc:
        raise RuntimeError(f"{openssl!r} not found: TLS needs the openssl command line") from exc
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"openssl {args[0]} failed (exit {exc.returncode}): {exc.stderr.strip()}"
        ) from exc


def generate_tls_files(
    directory: str | os.PathLike[str], *, days: int = 1, openssl: str = "openssl"
) -> TLSFiles:
    """Write a CA and a server certificate/key (RSA 2048) valid for ``days`` days.

    The certificate names ``IP:127.0.0.1`` and ``DNS:localhost`` and may be used by servers
    and clients alike. Files: ``ca.crt``, ``redis.crt`` and ``redis.key`` (mode 0600) in
    ``directory``, which must exist; the CA key is deleted once the certificate is signed.
    """
    d = Path(directory)
    conf = d / "openssl.cnf"
    conf.write_text(_OPENSSL_CONF)
    files = TLSFiles(ca_cert=d / "ca.crt", cert=d / "redis.crt", key=d / "redis.key")
    ca_key, csr = d / "ca.key", d / "redis.csr"
    try:
        # ``-config`` keeps the system openssl.cnf (and its defaults) out of the way.
        common = ("-config", str(conf), "-sha256", "-nodes", "-newkey", "rsa:2048")
        _run(
            openssl, "req", "-x509", *common, "-extensions", "v3_ca", "-days", str(days),
            "-keyout", str(ca_key), "-out", str(files.ca_cert), cwd=d,
        )  # fmt: skip
        _run(
            openssl, "req", "-new", *common, "-subj", "/CN=localhost",
            "-keyout", str(files.key), "-out", str(csr), cwd=d,
        )  # fmt: skip
        _run(
            openssl, "x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert),
            "-CAkey", str(ca_key), "-set_serial", f"0x{secrets.token_hex(16)}",
            "-days", str(days), "-sha256", "-extfile", str(conf), "-extensions", "server",
            "-out", str(files.cert), cwd=d,
        )  # fmt: skip
        files.key.chmod(0o600)
    finally:
        for leftover in (ca_key, csr, conf):
            leftover.unlink(missing_ok=True)
    return files
