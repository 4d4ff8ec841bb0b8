from hub.platform.config import ConfigSchema, load_config
from tests.support.paths import ROOT

EXAMPLE = ROOT / "config.example.toml"


def test_example_config_loads_and_matches_defaults():
    assert load_config(EXAMPLE, environ={}).as_dict() == load_config(data={}, environ={}).as_dict()


def test_example_config_documents_every_setting():
    text = EXAMPLE.read_text()
    schema = ConfigSchema()
    for name, field in schema.fields.items():
        if hasattr(field, "nested"):
            assert f"[{name}]" in text
            for sub in field.nested().fields:
                assert f"\n{sub} = " in text, f"[{name}] {sub} is not documented"
        else:
            assert f"\n{name} = " in text, f"{name} is not documented"
