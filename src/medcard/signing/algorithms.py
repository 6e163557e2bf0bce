"""Signature algorithms behind one small interface, so GOST R 34.10-2012 can be plugged in.

Each algorithm works on bytes only: it generates a key pair (private and public halves
in its own serialisation), signs and verifies.  The registry is keyed by the JWS
``alg`` name the signature header carries (RFC 7518 / RFC 8037); a GOST module
registers e.g. ``GOST3410-2012-256`` (the name used by the TC 26 JOSE drafts) with
:func:`register` and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)


@dataclass(frozen=True)
class KeyPair:
    private: bytes
    public: bytes


class Algorithm(Protocol):
    """What the signing service needs from an algorithm."""

    name: str  # JWS "alg"
    title: str  # shown to people

    def generate(self) -> KeyPair: ...

    def sign(self, private: bytes, data: bytes) -> bytes: ...

    def verify(self, public: bytes, data: bytes, signature: bytes) -> bool: ...


class Ed25519:
    """EdDSA over Curve25519 (RFC 8032); JWS ``EdDSA`` (RFC 8037)."""

    name = "EdDSA"
    title = "Ed25519"

    def generate(self) -> KeyPair:
        key = ed25519.Ed25519PrivateKey.generate()
        return KeyPair(
            key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            ),
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            ),
        )

    def sign(self, private: bytes, data: bytes) -> bytes:
        return ed25519.Ed25519PrivateKey.from_private_bytes(private).sign(data)

    def verify(self, public: bytes, data: bytes, signature: bytes) -> bool:
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


class EcdsaP256:
    """ECDSA on NIST P-256 with SHA-256; JWS ``ES256`` (raw r||s, RFC 7518 3.4)."""

    name = "ES256"
    title = "ECDSA P-256 / SHA-256"
    _size = 32

    def generate(self) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        return KeyPair(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            ),
        )

    def sign(self, private: bytes, data: bytes) -> bytes:
        key = serialization.load_der_private_key(private, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("not an EC private key")
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(self._size, "big") + s.to_bytes(self._size, "big")

    def verify(self, public: bytes, data: bytes, signature: bytes) -> bool:
        if len(signature) != 2 * self._size:
            return False
        r = int.from_bytes(signature[: self._size], "big")
        s = int.from_bytes(signature[self._size :], "big")
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


_REGISTRY: dict[str, Algorithm] = {}
DEFAULT = "EdDSA"


def register(algorithm: Algorithm) -> None:
    _REGISTRY[algorithm.name] = algorithm


def get(name: str) -> Algorithm:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"signature algorithm {name!r} is not registered") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


register(Ed25519())
register(EcdsaP256())
