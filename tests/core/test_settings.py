from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_defaults_put_everything_in_the_data_dir(data_dir: Path) -> None:
    s = Settings()
    assert s.data_dir == data_dir
    assert s.resolved_db_url == f"sqlite:///{(data_dir / 'chronotope.db').resolve()}"
    assert s.llm_is_embedded
    assert s.resolved_llm_base_url == "http://127.0.0.1:8001/v1"


def test_contract_env_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHRONOTOPE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHRONOTOPE_DB_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("CHRONOTOPE_LLM_BASE_URL", "http://gpu:8000/v1")
    monkeypatch.setenv("CHRONOTOPE_LLM__TIMEOUT_S", "3.5")
    s = Settings()
    assert s.resolved_db_url == "postgresql+psycopg://u@h/db"
    assert s.resolved_llm_base_url == "http://gpu:8000/v1"
    assert not s.llm_is_embedded
    assert s.llm.timeout_s == 3.5


def test_production_refuses_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOTOPE_ENV", "production")
    monkeypatch.setenv("CHRONOTOPE_API__BOOTSTRAP_ADMIN_KEY", "changeme")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOTOPE_RETRIEVAL__POOL_SIZE", "-3")
    with pytest.raises(ValidationError):
        Settings()
