"""Per-author signing keys: made on first signature, private halves encrypted at rest.

The key-encryption key is a Fernet key in the data directory (owner-readable only), so
a copy of the database alone cannot sign in anyone's name.  Public halves stay readable
forever: an old signature must verify after its author's key is replaced.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import Engine, insert, select, update

from medcard.clock import now_micros
from medcard.db.tables import signing_keys
from medcard.signing import algorithms

KEK_FILE = "signature-kek.key"


@dataclass(frozen=True)
class PublicKey:
    kid: str
    owner: str
    algorithm: str
    public: bytes


@dataclass(frozen=True)
class SigningKey:
    kid: str
    owner: str
    algorithm: str
    private: bytes


def load_or_create_kek(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(Fernet.generate_key())
    try:
        os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


class KeyStore:
    def __init__(self, engine: Engine, data_dir: Path, algorithm: str = algorithms.DEFAULT):
        self.engine = engine
        self._fernet = Fernet(load_or_create_kek(data_dir / KEK_FILE))
        self.algorithm = algorithms.get(algorithm).name
        self._public: dict[str, PublicKey] = {}  # public halves never change

    def signing_key(self, owner: str) -> SigningKey:
        """The owner's active key, generated on first use."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(signing_keys.c.id, signing_keys.c.algorithm, signing_keys.c.private_key)
                .where(signing_keys.c.owner == owner, signing_keys.c.active.is_(True))
                .order_by(signing_keys.c.created.desc())
                .limit(1)
            ).first()
        if row is not None:
            return SigningKey(row[0], owner, row[1], self._fernet.decrypt(row[2].encode()))
        return self.rotate(owner)

    def rotate(self, owner: str) -> SigningKey:
        """A fresh key for the owner; older keys stop signing but still verify."""
        alg = algorithms.get(self.algorithm)
        pair = alg.generate()
        kid = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                update(signing_keys)
                .where(signing_keys.c.owner == owner, signing_keys.c.active.is_(True))
                .values(active=False)
            )
            conn.execute(
                insert(signing_keys).values(
                    id=kid,
                    owner=owner,
                    algorithm=alg.name,
                    public_key=base64.b64encode(pair.public).decode(),
                    private_key=self._fernet.encrypt(pair.private).decode(),
                    created=now_micros(),
                    active=True,
                )
            )
        return SigningKey(kid, owner, alg.name, pair.private)

    def public_key(self, kid: str) -> PublicKey | None:
        if kid in self._public:
            return self._public[kid]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    signing_keys.c.owner, signing_keys.c.algorithm, signing_keys.c.public_key
                ).where(signing_keys.c.id == kid)
            ).first()
        if row is None:
            return None
        key = self._public[kid] = PublicKey(kid, row[0], row[1], base64.b64decode(row[2]))
        return key
