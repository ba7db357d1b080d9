"""Admin forms for memberships: an owner invites an existing account by username or email."""

from __future__ import annotations

from django import forms

from django_etl.core.models import MembershipRole, Organization, OrganizationMembership, User


class InviteForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.none())
    username_or_email = forms.CharField(
        label="Username or email",
        max_length=254,
        help_text="An existing account. The page answers the same whether or not one exists.",
    )
    role = forms.ChoiceField(choices=MembershipRole.choices, initial=MembershipRole.VIEWER)

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the organizations the inviter owns: another organization's id is not a valid choice.
        self.fields["organization"].queryset = organizations

    def save(self) -> OrganizationMembership | None:
        """Add the account, unless there is none, it is inactive, or it already belongs (its role stays)."""
        user = find_account(self.cleaned_data["username_or_email"])
        if user is None:
            return None
        membership, created = OrganizationMembership.objects.get_or_create(
            user=user,
            organization=self.cleaned_data["organization"],
            defaults={"role": self.cleaned_data["role"]},
        )
        return membership if created else None

    def outcome_message(self) -> str:
        """The one message for every outcome, so the page does not tell which accounts exist."""
        organization = self.cleaned_data["organization"]
        role = MembershipRole(self.cleaned_data["role"]).label.lower()
        return (
            f"If an account with that username or email exists, it was added to {organization} as {role}; "
            "an account that already belonged keeps its role."
        )


def find_account(identifier: str) -> User | None:
    """The active account with this username, or else the only active account with this email."""
    identifier = identifier.strip()
    user = User.objects.filter(username=identifier, is_active=True).first()
    if user is not None:
        return user
    by_email = list(User.objects.filter(email__iexact=identifier, is_active=True)[:2])
    return by_email[0] if len(by_email) == 1 else None
