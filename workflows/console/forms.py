"""The console's forms: they shape input for the services; the services decide whether it is allowed.

Errors a service reports (``ApplicationError.extra["fields"]``) are put back
next to the field they name by :func:`attach_service_error`.
"""
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import MaxValueValidator
from django.db.models import QuerySet

from deployments.models import Application, Environment, Project
from deployments.packages import SHA256
from paas_site.errors import ApplicationError

from ..api.serializers import COMMIT_PATTERN, VERSION_PATTERN
from ..choices import ChannelKind, Medium, NotificationEvent

MAX_CONFIG_FILES = 20


class ApplicationChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Application) -> str:
        return f"{obj} (built from {obj.base_image.display_name})" if obj.base_image_id else f"{obj} (prebuilt image)"


class ReleaseForm(forms.Form):
    """What ``workflows.services.release_file`` takes, as a web form.

    The artifact (where the code comes from) is the part that varies by
    application: a prebuilt image, or for an application built from a base
    image a package (uploaded with the form, or a URL + sha256) and a commit.
    ``ARTIFACT_FIELDS`` lists them (the template renders that fieldset from it);
    :meth:`artifact` returns them as the keyword arguments the service takes,
    and :meth:`upload` the uploaded package file, if any.
    """

    application = ApplicationChoice(queryset=Application.objects.none(), empty_label="Choose an application")
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
    package_file = forms.FileField(
        required=False, label="Package upload",
        help_text="e.g. orders-1.4.2.war; its name is its file name in the image.",
    )
    package_url = forms.CharField(required=False, max_length=2000, label="Or package URL",
                                  widget=forms.TextInput(attrs={"size": 64, "spellcheck": "false"}))
    package_sha256 = forms.RegexField(
        SHA256, required=False, label="Package sha256", widget=forms.TextInput(attrs={"size": 64, "spellcheck": "false"}),
        help_text="Optional for a URL: the build refuses a download with another sha256.",
        error_messages={"invalid": "Use 64 lowercase hexadecimal digits, as sha256sum prints them."},
    )
    commit = forms.RegexField(
        COMMIT_PATTERN, required=False, max_length=64, help_text="Source revision (e.g. a git commit), labelled on the image.",
        error_messages={"invalid": "Use up to 64 letters, digits, '_', '.' or '-'."},
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

    ARTIFACT_FIELDS = ["image", "package_file", "package_url", "package_sha256", "commit"]

    def __init__(self, *args: Any, applications: QuerySet[Application], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["application"].queryset = applications.select_related("project", "base_image")
        hosts = ", ".join(settings.SLIPWAY_PACKAGE_HOSTS) or "none are configured"
        self.fields["package_url"].help_text = f"An http(s) URL on an allowed host ({hosts})."

    def chosen_application(self) -> Application | None:
        """The application picked so far (submitted, or preselected by the link that opened the form)."""
        if hasattr(self, "cleaned_data"):
            return self.cleaned_data.get("application")
        try:
            return self.fields["application"].clean(self["application"].value())
        except forms.ValidationError:
            return None

    def artifact_hint(self) -> str:
        """Which artifact fields apply to the chosen application."""
        app = self.chosen_application()
        if app is None:
            return ("An application built from a base image takes a package (upload it, or give its URL) and a "
                    "commit; one with a prebuilt image takes the image.")
        if app.base_image_id:
            return (f"{app} is built from base image {app.base_image.display_name}: upload its package or give the "
                    "package URL, and the commit. Slipway builds the image; leave the prebuilt image empty.")
        default = f"empty for {app.image}:<version>" if app.image else "it has no repository to default to"
        return f"{app} runs a prebuilt image: give the image ({default}), not a package."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        app = data.get("application")
        if data.get("package_file") and data.get("package_url"):
            self.add_error("package_url", "Upload a package or give its URL, not both.")
        elif app is not None and app.base_image_id and not data.get("package_file") and not data.get("package_url") \
                and "package_file" not in self.errors:
            self.add_error("package_file", f"{app} is built from base image {app.base_image.display_name}: "
                                           "upload its package or give its URL.")
        return data

    def artifact(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in ("image", "package_url", "package_sha256", "commit")}

    def upload(self) -> UploadedFile | None:
        return self.cleaned_data.get("package_file")

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


# the package upload's and the release's names for the form's upload field
SERVICE_FIELDS = {"file": "package_file", "package": "package_file"}


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
            elif SERVICE_FIELDS.get(key, key) in form.fields:
                form.add_error(SERVICE_FIELDS.get(key, key), reason)
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


class ApiTokenForm(forms.Form):
    """A new API token: a name, and a lifetime in days (blank: the default, ``SLIPWAY_API_TOKEN_SECONDS``)."""

    name = forms.CharField(max_length=100, help_text="To tell your tokens apart, e.g. the script that uses it.")
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", required=False, min_value=1,
        help_text="Blank: the default lifetime. At most SLIPWAY_API_TOKEN_MAX_SECONDS.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        maximum = settings.SLIPWAY_API_TOKEN_MAX_SECONDS // 86400
        self.fields["expires_in_days"].max_value = maximum
        self.fields["expires_in_days"].validators.append(MaxValueValidator(maximum))
        self.fields["expires_in_days"].widget.attrs["max"] = maximum
        self.fields["expires_in_days"].help_text = f"Blank: the default lifetime; at most {maximum} days."


class NotificationChannelForm(forms.Form):
    """A project's chat robot; the URL and secret are written, never shown again."""

    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    url = forms.URLField(label="Webhook URL", max_length=2000, widget=forms.PasswordInput, assume_scheme="https",
                         help_text="Copied from the robot's settings; it holds the robot's token, so it is never shown.")
    secret = forms.CharField(label="Signing secret", required=False, max_length=500, widget=forms.PasswordInput,
                             help_text="DingTalk (SEC…) and Feishu / Lark robots with signature verification.")
    events = forms.MultipleChoiceField(choices=NotificationEvent.choices, widget=forms.CheckboxSelectMultiple,
                                       help_text="What the channel is told of.")


class NotificationPreferencesForm(forms.Form):
    """Per event kind, the media that reach me; my chat ids, by which robots mention me."""

    slack_id = forms.CharField(label="Slack member ID", max_length=64, required=False)
    dingtalk_id = forms.CharField(label="DingTalk userId", max_length=64, required=False)
    wecom_id = forms.CharField(label="WeCom userid", max_length=64, required=False)
    feishu_id = forms.CharField(label="Feishu / Lark open_id", max_length=64, required=False)

    def __init__(self, *args, events: dict[str, list[str]], **kwargs):
        super().__init__(*args, **kwargs)
        for index, (event, label) in enumerate(NotificationEvent.choices):
            self.fields[f"event_{index}"] = forms.MultipleChoiceField(
                label=label, choices=Medium.choices, widget=forms.CheckboxSelectMultiple, required=False,
                initial=events.get(event, []))

    def event_fields(self):
        return [self[f"event_{index}"] for index in range(len(NotificationEvent.choices))]

    def preferences(self) -> dict[str, list[str]]:
        return {event: self.cleaned_data[f"event_{index}"] for index, event in enumerate(NotificationEvent.values)}

    def chat_ids(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in ("slack_id", "dingtalk_id", "wecom_id", "feishu_id")}
