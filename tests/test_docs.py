"""The README documents every setting a user can set."""

from __future__ import annotations

from pathlib import Path

from api.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def environment_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"AGENT_{field.upper()}"


def test_every_setting_is_in_the_readme_table() -> None:
    missing = [
        environment_name(field)
        for field in Settings.model_fields
        if f"| `{environment_name(field)}` |" not in README
    ]

    assert missing == []
