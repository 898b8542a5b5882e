"""Forms of the Clusters pages. They shape input; ``clusters.services`` applies the rules."""

from django import forms

from clusters.models import Cluster

APPROVAL_CHOICES = [("unknown", "As the site-wide setting"), ("true", "Yes"), ("false", "No")]


class ClusterForm(forms.ModelForm):
    """A cluster's name, description, limits and approval rule (admins add and edit them)."""

    class Meta:
        model = Cluster
        fields = ["name", "description", "max_concurrent", "heartbeat_interval", "requires_approval"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3}),
}
        labels = {"requires_approval": "Calculations need a moderator's approval"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["requires_approval"].widget.choices = APPROVAL_CHOICES


class ApiKeyForm(forms.Form):
    """A name for a new API key, e.g. the host its agent runs on."""

    name = forms.CharField(max_length=100, initial="agent", label="Key name",
                           help_text="Say where the agent using it runs, e.g. “login1”.")
