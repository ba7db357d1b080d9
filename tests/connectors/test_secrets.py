"""The one masking rule: secret values masked everywhere, login names and trivially short values never."""

from __future__ import annotations

from django_etl.connectors.secrets import (
    MASK,
    mask,
    mask_data,
    mask_sensitive_keys,
    secret_values,
    too_short_to_mask,
)


def test_secret_values_skip_login_names_and_short_values():
    secret = {"user": "postgres", "password": "hunter22", "pin": "e", "nested": {"token": ["tok-12345"]}}
    assert secret_values(secret) == ["tok-12345", "hunter22"]


def test_mask_replaces_every_secret_longest_first():
    text = "user=etl password=hunter22 token=hunter22-extra"
    assert mask(text, ["hunter22", "hunter22-extra"]) == f"user=etl password={MASK} token={MASK}"


def test_mask_never_rewrites_ordinary_text_for_a_short_secret():
    # A one-letter secret would turn "extract" into "e***tract"-like garbage: it is never registered.
    values = secret_values({"password": "x"})
    assert values == []
    assert mask("extract the next batch", [*values, "x"]) == "extract the next batch"


def test_too_short_to_mask_names_the_keys_the_form_warns_about():
    assert too_short_to_mask({"user": "a", "password": "abc", "token": "long-enough"}) == ["password"]


def test_mask_data_masks_nested_strings_and_keys():
    data = {"error": "login failed for hunter22", "hunter22": [1, "a hunter22 b"]}
    assert mask_data(data, ["hunter22"]) == {"error": f"login failed for {MASK}", MASK: [1, f"a {MASK} b"]}


def test_mask_sensitive_keys_masks_values_under_secret_looking_keys():
    conf = {"api_token": "abc", "day": "2026-01-01", "nested": [{"db_password": 1}]}
    assert mask_sensitive_keys(conf) == {
        "api_token": MASK,
        "day": "2026-01-01",
        "nested": [{"db_password": MASK}],
    }
