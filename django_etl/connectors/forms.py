"""Admin forms for credentials: the secret is write-only input, stored encrypted, never shown back."""

from __future__ import annotations

from django import forms

from django_etl.connectors.models import Credential
from django_etl.connectors.secrets import MIN_SECRET_LENGTH, too_short_to_mask
from django_etl.core.jsonfields import JSONInputError, parse_json


class WriteOnlyTextarea(forms.Textarea):
    """Never renders a value, not even the one just submitted with an error: it is a secret."""

    def format_value(self, value):
        return None


class CredentialForm(forms.ModelForm):
    secret = forms.CharField(
        label="Secret (JSON)",
        required=False,
        strip=True,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text='A JSON object, e.g. {"user": "etl", "password": "…"}. Write-only: the stored value is never '
        "shown. Leave empty to keep the current secret.",
    )

    class Meta:
        model = Credential
        fields = ["name", "organization", "expires_at"]

    def clean_secret(self) -> dict | None:
        text = self.cleaned_data.get("secret") or ""
        if not text:
            if self.instance._state.adding:
                raise forms.ValidationError("A new credential needs its secret.")
            return None
        try:
            data = parse_json(text)
        except JSONInputError as exc:
            # The message names the position and the rule only: the input itself is a secret.
            raise forms.ValidationError(str(exc)) from None
        if not isinstance(data, dict) or not data:
            raise forms.ValidationError("The secret must be a non-empty JSON object of names to values.")
        return data

    def warnings(self) -> list[str]:
        """What to tell about a saved secret: values too short to be masked in logs (never the values)."""
        data = self.cleaned_data.get("secret") if hasattr(self, "cleaned_data") else None
        short = too_short_to_mask(data or {})
        if not short:
            return []
        return [
            f"{', '.join(map(repr, short))}: shorter than {MIN_SECRET_LENGTH} characters, so not masked in logs "
            "and messages (masking so short a value would rewrite ordinary text); use a longer secret."
        ]

    def save(self, commit: bool = True) -> Credential:
        credential = super().save(commit=False)
        data = self.cleaned_data.get("secret")
        if data is not None:
            credential.encrypt_data(data)
        if commit:
            credential.save()
        return credential
