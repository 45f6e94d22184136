"""The cluster's certificates and keys: a CA, the API server's serving cert, the service-account
signing key pair, and client certs (admin, components, the node) with their kubeconfigs."""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Created with its final mode (a key is never readable by others, not even for a moment);
    a leftover file is replaced, not rewritten, so its old mode does not carry over."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class PKI:
    def __init__(self, dir_: Path) -> None:
        self.dir = dir_
        self.ca_cert_path = dir_ / "ca.crt"
        self.ca_key_path = dir_ / "ca.key"

    def path(self, name: str) -> tuple[Path, Path]:
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"

    def ensure_ca(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.ca_cert_path.exists():
            return
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localkube-ca")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + 10 * VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        _write(self.ca_key_path, _pem_key(key), private=True)
        _write(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, common_name: str, *, orgs: tuple[str, ...] = (), server: bool = False,
              client: bool = False, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
        cert_path, key_path = self.path(name)
        if cert_path.exists():
            return cert_path, key_path
        ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        key = _key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        if dns or ips:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        _write(key_path, _pem_key(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path

    def service_account_keys(self) -> tuple[Path, Path]:
        pub, priv = self.dir / "sa.pub", self.dir / "sa.key"
        if not priv.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write(priv, _pem_key(key), private=True)
            _write(pub, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        return pub, priv

    def kubeconfig(self, path: Path, server: str, user: str, cert: Path, key: Path) -> Path:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "localkube",
            "clusters": [{"name": "localkube", "cluster": {
                "server": server, "certificate-authority-data": b64(self.ca_cert_path)}}],
            "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
            "contexts": [{"name": "localkube", "context": {"cluster": "localkube", "user": user}}],
        }
        _write(path, yaml.safe_dump(config).encode(), private=True)
        return path
