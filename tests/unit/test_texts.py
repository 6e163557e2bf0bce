"""Every page text exists in both languages."""

from __future__ import annotations

from medcard.web.i18n import CATALOGUE


def test_every_text_key_has_russian_and_english() -> None:
    assert set(CATALOGUE["ru"]) == set(CATALOGUE["en"])


def test_no_text_is_empty() -> None:
    for lang, texts in CATALOGUE.items():
        assert all(v.strip() for v in texts.values()), lang
