"""The console's forms: they shape input for the services; the services decide whether it is allowed.

Errors a service reports (``ApplicationError.extra["fields"]``) are put back
next to the field they name by :func:`attach_service_error`.
"""
from typing import Any

from django import forms
from django.db.models import QuerySet

from deployments.models import Application, Environment, Project
from paas_site.errors import ApplicationError

from ..api.serializers import VERSION_PATTERN

MAX_CONFIG_FILES = 20


class ReleaseForm(forms.Form):
    """What ``workflows.services.release_file`` takes, as a web form.

    The artifact (where the code comes from) is the one part that varies by
    application: today a prebuilt image. Image builds add a package upload or
    URL + sha256 here: declare the fields, list them in ``ARTIFACT_FIELDS`` (the
    template renders that fieldset from it) and return them from
    :meth:`artifact` (the keyword arguments the service takes).
    """

    application = forms.ModelChoiceField(queryset=Application.objects.none(), empty_label="Choose an application")
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.order_by("rank", "name"), to_field_name="name", empty_label="Choose an environment"
    )
    version = forms.RegexField(
        VERSION_PATTERN, max_length=128, help_text="e.g. 1.4.2 or 2026.11.26-3",
        error_messages={"invalid": "Use letters, digits, '.', '_', '+' or '-', starting with a letter or digit."},
    )
    image = forms.CharField(
        required=False, max_length=512, label="Prebuilt image",
        help_text="Leave empty to use the application's image repository tagged with the version.",
    )
    env = forms.CharField(
        required=False, strip=False, label="Environment variables", help_text="One NAME=value per line.",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
    )
    description = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    scheduled_at = forms.DateTimeField(
        required=False, label="Start no earlier than (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Empty: start as soon as it is approved and its lane is free.",
    )

    ARTIFACT_FIELDS = ["image"]

    def __init__(self, *args: Any, applications: QuerySet[Application], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["application"].queryset = applications

    def artifact(self) -> dict[str, Any]:
        return {"image": self.cleaned_data["image"]}

    def clean_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        problems = []
        for number, line in enumerate(self.cleaned_data["env"].splitlines(), start=1):
            if not line.strip():
                continue
            name, equals, value = line.partition("=")
            name = name.strip()
            if not equals or not name:
                problems.append(f"line {number}: expected NAME=value.")
            elif name in env:
                problems.append(f"line {number}: {name} is set twice.")
            else:
                env[name] = value
        if problems:
            raise forms.ValidationError(problems)
        return env

    def service_arguments(self, files: dict[str, str]) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "application": data["application"], "environment": data["environment"], "version": data["version"],
            "config": {"env": data["env"], "files": files}, "description": data["description"],
            "scheduled_at": data["scheduled_at"], **self.artifact(),
        }


class ConfigFileForm(forms.Form):
    name = forms.CharField(required=False, max_length=253, label="File name")
    content = forms.CharField(required=False, strip=False,
                              widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}))

    def clean_content(self) -> str:
        return self.cleaned_data["content"].replace("\r\n", "\n")  # browsers send textarea lines with CRLF

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("content") and not data.get("name"):
            self.add_error("name", "A file with content needs a name.")
        return data


class BaseConfigFileFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        seen = set()
        for form in self.forms:
            name = form.cleaned_data.get("name") if form.is_valid() else None
            if name and name in seen:
                form.add_error("name", f"{name} is listed twice.")
            seen.add(name)

    def config_files(self) -> dict[str, str]:
        return {form.cleaned_data["name"]: form.cleaned_data["content"] for form in self.forms if form.cleaned_data.get("name")}


ConfigFileFormSet = forms.formset_factory(
    ConfigFileForm, formset=BaseConfigFileFormSet, extra=2, max_num=MAX_CONFIG_FILES, validate_max=True
)


def attach_service_error(exc: ApplicationError, form: ReleaseForm, files: BaseConfigFileFormSet) -> None:
    """Put a service's field errors next to their fields; anything else above the form."""
    fields = exc.extra.get("fields") or {}
    if not fields:
        form.add_error(None, exc.message)
        return
    for key, reasons in fields.items():
        for reason in reasons if isinstance(reasons, list) else [reasons]:
            if key.startswith("config.env"):
                name = key.removeprefix("config.env").lstrip(".")
                form.add_error("env", f"{name}: {reason}" if name else reason)
            elif key.startswith("config.files."):
                name = key.removeprefix("config.files.")
                target = next((f for f in files.forms if f.cleaned_data.get("name") == name), None)
                if target is not None:
                    target.add_error("name", reason)
                else:
                    form.add_error(None, f"file {name}: {reason}")
            elif key in form.fields:
                form.add_error(key, reason)
            else:
                form.add_error(None, f"{key}: {reason}")


class CommentForm(forms.Form):
    comment = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))


class RollbackForm(forms.Form):
    description = forms.CharField(
        required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you roll back (kept in the audit trail).",
    )


class ScaleForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=Environment.objects.select_related("cluster"), to_field_name="name",
                                         widget=forms.HiddenInput)
    replicas = forms.IntegerField(min_value=0, max_value=100)


class LogForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=Environment.objects.all(), to_field_name="name")
    pod = forms.CharField(max_length=253)
    tail = forms.IntegerField(min_value=1, max_value=5000, initial=200, required=False, label="Last lines")


class CostFilterForm(forms.Form):
    month = forms.DateField(input_formats=["%Y-%m"], widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
                            error_messages={"invalid": "Enter a month as YYYY-MM."})
    project = forms.ModelChoiceField(queryset=Project.objects.none(), to_field_name="slug", required=False,
                                     empty_label="All projects")

    def __init__(self, *args: Any, projects: QuerySet[Project], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects
