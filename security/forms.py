from django import forms


class SignInNetworksForm(forms.Form):
    networks = forms.CharField(
        label="Allowed networks",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocapitalize": "none"}),
        help_text="One network per line, such as 203.0.113.0/24 or 2001:db8::/48. Leave empty to allow sign-in "
                  "from anywhere.",
    )
