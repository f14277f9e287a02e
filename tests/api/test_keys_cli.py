"""`chronotope keys create`: the contract (key on the last line of stdout), keys stored hashed only."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from api.auth import authenticate
from core.db import open_store
from core.errors import AuthError
from core.models import ApiKey
from core.settings import Settings


def _chronotope(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chronotope") or str(Path(sys.executable).parent / "chronotope")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def test_keys_create_prints_the_key_last_and_stores_only_its_hash(data_dir: Path) -> None:
    out = _chronotope("keys", "create", "--role", "user", "--user", "470")
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("ck_") and len(key) > 30
    _, factory = open_store(Settings())
    with factory() as s:
        rows = list(s.scalars(select(ApiKey)))
        assert len(rows) == 1 and rows[0].key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in {str(v) for v in vars(rows[0]).values()}  # the plain key is nowhere
        who = authenticate(s, f"Bearer {key}")
        assert (who.role, who.user_id) == ("user", "470")
        with pytest.raises(AuthError):
            authenticate(s, f"Bearer {key}x")
    bad = _chronotope("keys", "create", "--role", "user")  # a user key needs --user
    assert bad.returncode != 0 and "--user" in bad.stderr
    bad = _chronotope("keys", "create", "--role", "root")
    assert bad.returncode != 0 and "role" in bad.stderr
