"""meshplane-ven's settings: MESHPLANE_VEN_* variables, defaults, and one line naming a bad one."""

from __future__ import annotations

import datetime as dt

import pytest

from controller.core.openadr import DEFAULT_LEVELS
from controller.ven.settings import SettingsError, VenSettings

REQUIRED = {"MESHPLANE_VEN_VTN_URL": "https://vtn.example/openadr3/3.1.0", "MESHPLANE_VEN_CLIENT_ID": "ven",
            "MESHPLANE_VEN_CLIENT_SECRET": "s3cret"}


def test_defaults():
    settings = VenSettings.from_env({**REQUIRED, "POD_NAME": "meshplane-ven-0"})
    assert (settings.poll_interval_s, settings.stale_after, settings.lease_name) == (
        60.0, dt.timedelta(seconds=180), "meshplane-ven")
    assert settings.identity.startswith("meshplane-ven-0-") and settings.token_url == ""
    config = settings.config()
    assert (config.vtn, config.program_names, dict(config.level_map), config.lead_time) == (
        "vtn", (), dict(DEFAULT_LEVELS), "PT15M")
    assert settings.factory_map == {} and settings.reports == "true"


def test_every_setting_is_read():
    settings = VenSettings.from_env({
        **REQUIRED, "MESHPLANE_VEN_VTN_NAME": "tva", "MESHPLANE_VEN_PROGRAMS": "dc-flex, emergency,",
        "MESHPLANE_VEN_FACTORIES": "us-memphis-1=TVA-RES-0042, fr-grenoble-1",
        "MESHPLANE_VEN_LEVELS": "1:0.3,2=0.6,3=1", "MESHPLANE_VEN_POLL_INTERVAL_S": "30",
        "MESHPLANE_VEN_STALE_AFTER_S": "45", "MESHPLANE_VEN_LEAD_TIME": "PT20M",
        "MESHPLANE_VEN_RESTORE_DURATION": "PT10M", "MESHPLANE_VEN_RESTORE_STEPS": "2",
        "MESHPLANE_VEN_OPEN_ENDED_STEP_S": "3600", "KUBECONFIG": "/k",
    })
    assert settings.program_names == ("dc-flex", "emergency")
    assert settings.factory_map == {"us-memphis-1": "TVA-RES-0042", "fr-grenoble-1": ""}
    assert settings.level_map == {1: 0.3, 2: 0.6, 3: 1.0}
    assert settings.stale_after == dt.timedelta(seconds=45) and settings.kubeconfig == "/k"
    config = settings.config()
    assert (config.vtn, config.restore_duration, config.restore_steps, config.open_ended_step) == (
        "tva", "PT10M", 2, dt.timedelta(hours=1))


@pytest.mark.parametrize(("env", "named"), [
    ({"MESHPLANE_VEN_VTN_URL": ""}, "MESHPLANE_VEN_VTN_URL"),
    ({"MESHPLANE_VEN_VTN_URL": "vtn.example"}, "MESHPLANE_VEN_VTN_URL"),
    ({"MESHPLANE_VEN_TOKEN_URL": "ftp://x"}, "MESHPLANE_VEN_TOKEN_URL"),
    ({"MESHPLANE_VEN_CLIENT_SECRET": ""}, "MESHPLANE_VEN_CLIENT_SECRET"),
    ({"MESHPLANE_VEN_VTN_NAME": "My_VTN"}, "MESHPLANE_VEN_VTN_NAME"),
    ({"MESHPLANE_VEN_POLL_INTERVAL_S": "often"}, "MESHPLANE_VEN_POLL_INTERVAL_S"),
    ({"MESHPLANE_VEN_POLL_INTERVAL_S": "0"}, "MESHPLANE_VEN_POLL_INTERVAL_S"),
    ({"MESHPLANE_VEN_LEVELS": "1=2"}, "MESHPLANE_VEN_LEVELS"),
    ({"MESHPLANE_VEN_LEVELS": "high"}, "MESHPLANE_VEN_LEVELS"),
    ({"MESHPLANE_VEN_FACTORIES": "=target"}, "MESHPLANE_VEN_FACTORIES"),
    ({"MESHPLANE_VEN_LEAD_TIME": "15 minutes"}, "MESHPLANE_VEN_LEAD_TIME"),
    ({"MESHPLANE_VEN_RESTORE_STEPS": "0"}, "MESHPLANE_VEN_RESTORE_STEPS"),
    ({"MESHPLANE_VEN_REPORTS": "yes"}, "MESHPLANE_VEN_REPORTS"),
    ({"MESHPLANE_VEN_LEASE_RENEW_DEADLINE_S": "20"}, "Lease timings"),
    ({"MESHPLANE_VEN_LOG_FORMAT": "xml"}, "MESHPLANE_VEN_LOG_FORMAT"),
])
def test_a_bad_value_is_named(env: dict[str, str], named: str):
    with pytest.raises(SettingsError, match=named):
        VenSettings.from_env({**REQUIRED, **env})


def test_main_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    from controller.ven.main import main

    for name in list(REQUIRED):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MESHPLANE_VEN_VTN_URL", "")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meshplane-ven: MESHPLANE_VEN_VTN_URL is required") and err.count("\n") == 1
