import pytest

from hub.platform.config import load_config
from hub.shared.config_errors import ConfigError
from hub.shared.security import load_vault


def test_defaults_are_the_embedded_setup():
    config = load_config(data={}, environ={})
    assert config.database_url == "sqlite:///var/hub.db"
    assert config.web.port == 8000
    assert config.mode == "development"


def test_toml_file_and_nested_environment_overrides(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text('database_url = "sqlite:///x.db"\n[worker]\nbatch_size = 10\n')
    config = load_config(path, environ={"HUB_WORKER__BATCH_SIZE": "20", "HUB_WEB__PORT": "9000"})
    assert config.database_url == "sqlite:///x.db"
    assert config.worker.batch_size == 20
    assert config.web.port == 9000


def test_hub_config_variable_names_the_file(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text('[log]\nlevel = "DEBUG"\n')
    assert load_config(environ={"HUB_CONFIG": str(path)}).log.level == "DEBUG"


@pytest.mark.parametrize(
    "data, environ, expected",
    [
        ({"worker": {"batch_size": "many"}}, {}, "worker.batch_size: Not a valid integer."),
        ({}, {"HUB_WEB__PORT": "70000"}, "web.port:"),
        ({"mode": "staging"}, {}, "mode: Must be one of"),
        ({"wrker": {}}, {}, "wrker: Unknown field."),
        ({"delivery": {"max_age_seconds": 0}}, {}, "delivery.max_age_seconds: must be greater than 0"),
        ({}, {"HUB_LOG__LEVEL": "LOUD"}, "log.level"),
    ],
)
def test_invalid_config_names_the_key(data, environ, expected):
    with pytest.raises(ConfigError) as err:
        load_config(data=data, environ=environ)
    assert expected in str(err.value)


def test_missing_and_broken_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[worker\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, environ={})


def test_production_without_encryption_key_refuses_to_start(tmp_path):
    config = load_config(data={"mode": "production", "data_dir": str(tmp_path)}, environ={})
    with pytest.raises(ConfigError, match="encryption_keys: missing"):
        load_vault(config)
    assert not list(tmp_path.iterdir()), "nothing may be written"


def test_development_generates_and_keeps_a_key(tmp_path):
    config = load_config(data={"data_dir": str(tmp_path)}, environ={})
    first = load_vault(config).encrypt({"token": "x"})
    assert load_vault(config).decrypt(first) == {"token": "x"}
    assert oct((tmp_path / "encryption.key").stat().st_mode)[-3:] == "600"


def test_bad_fernet_key_is_named():
    config = load_config(data={"encryption_keys": "not-a-key"}, environ={})
    with pytest.raises(ConfigError, match="encryption_keys: not a valid Fernet key"):
        load_vault(config)
