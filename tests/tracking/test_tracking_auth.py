"""A tracking server with authentication (MLflow's basic-auth app): our tracking writes to it with the
credentials from MLFLOW_TRACKING_USERNAME/PASSWORD, and wrong ones are a clear error, not a silent
offline run."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_helpers import MlflowServer

from stylegan_v.tracking import RunTracker, TrackingAuthError, TrackingConfig

pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs Flask-WTF (pip install 'mlflow[auth]')")

ADMIN, PASSWORD = "admin", "a-long-test-password-1"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("mlflow_auth")
    ini = root / "basic_auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'users.db'}\n"
                   f"admin_username = {ADMIN}\nadmin_password = {PASSWORD}\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    server = MlflowServer(root, f"sqlite:///{root / 'mlflow.db'}", app_name="basic-auth",
                          env={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-key"})
    server.start(timeout_s=120)
    yield server
    server.stop()


def _cfg(uri: str) -> TrackingConfig:
    return TrackingConfig(tracking_uri=uri, experiment="auth-test", request_timeout_s=10, request_max_retries=0)


def test_tracking_writes_to_an_authenticated_server(auth_server: MlflowServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    tracker = RunTracker.open(tmp_path / "run", _cfg(auth_server.uri), run_name="auth", params={"a": 1})
    assert tracker.online
    tracker.log_metrics({"loss/G": 1.5}, step=3)
    tracker.close("FINISHED")
    from mlflow import MlflowClient

    run = MlflowClient(auth_server.uri).get_run(tracker.run_id)
    assert run.data.metrics == {"loss/G": 1.5} and run.info.status == "FINISHED"


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_wrong_or_missing_credentials_are_a_clear_error(auth_server: MlflowServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, password: str | None) -> None:
    if password is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    with pytest.raises(TrackingAuthError, match="refused the credentials.*MLFLOW_TRACKING_USERNAME"):
        RunTracker.open(tmp_path / "run", _cfg(auth_server.uri), run_name="auth", params={})
