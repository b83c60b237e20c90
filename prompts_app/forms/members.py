"""Forms for members: inviting someone, changing a role, answering an invitation."""

from __future__ import annotations

from django import forms

from prompts_app.models import Role


class InviteForm(forms.Form):
    invitee = forms.CharField(
        label="Username or email",
        max_length=254,
        required=False,
        help_text="Only that account can accept. Leave empty for a link that whoever you hand it to can use.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def clean_invitee(self) -> str:
        invitee = self.cleaned_data["invitee"].strip()
        if any(c.isspace() or not c.isprintable() for c in invitee):
            raise forms.ValidationError("A username or email address has no spaces; check what you typed.")
        return invitee


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AnswerForm(forms.Form):
    answer = forms.ChoiceField(choices=[("accept", "Accept"), ("decline", "Decline")])
    token = forms.CharField(max_length=100, required=False)
