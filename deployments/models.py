"""What runs where: projects, clusters, environments, applications."""
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q

from paas_site import outbound
from paas_site.crypto import EncryptedTextField

from . import kubeconfig, middleware
from .choices import ClusterAuth, RevisionKind, Role
from .validators import (
    parse_cpu,
    parse_memory,
    validate_absolute_path,
    validate_cpu_quantity,
    validate_dns_label,
    validate_image_reference,
    validate_image_registry,
    validate_memory_quantity,
    validate_service_name,
)

# A namespace is "<project>-<environment>" by default and the instance label
# "<application>-<environment>"; both must stay 63-char labels, so names are short.
PROJECT_SLUG_MAX = 30
ENVIRONMENT_NAME_MAX = 20
APPLICATION_NAME_MAX = 40


class Project(models.Model):
    slug = models.CharField(max_length=PROJECT_SLUG_MAX, unique=True, validators=[validate_dns_label])
    name = models.CharField(max_length=120)
    cost_center = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # Made by the group mapping at sign-in (workflows.directory): it changes or removes only these, never a
    # membership given by hand; a hand-made change of the role makes it a hand-made membership.
    via_mapping = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["project__slug", "user__username"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user_per_project")]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.project}"


class Cluster(models.Model):
    """A Kubernetes API server Slipway deploys to. Credentials never leave the model."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    api_server = models.CharField(
        max_length=255,
        blank=True,
        validators=[URLValidator(schemes=["https", "http"])],
        help_text="Kubernetes API URL. Taken from the kubeconfig when that is the auth method.",
    )
    auth_method = models.CharField(max_length=16, choices=ClusterAuth.choices, default=ClusterAuth.TOKEN)
    token = EncryptedTextField(blank=True)
    ca_certificate = models.TextField(blank=True, help_text="PEM CA bundle for the API server (token auth).")
    kubeconfig = EncryptedTextField(blank=True)
    ingress_address = models.CharField(
        max_length=253, blank=True, help_text="IP address or hostname of the cluster's ingress, published in DNS."
    )
    ingress_class = models.CharField(max_length=63, default="nginx", validators=[validate_dns_label])
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.token if self.auth_method == ClusterAuth.TOKEN else self.kubeconfig)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not isinstance(self.labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()
        ):
            errors["labels"] = "must be an object of string keys to string values."
        if self.auth_method == ClusterAuth.KUBECONFIG:
            if not self.kubeconfig:
                errors["kubeconfig"] = "is required when the auth method is kubeconfig."
            else:
                try:
                    self.api_server = kubeconfig.parse(self.kubeconfig).server
                except ValueError as exc:
                    errors["kubeconfig"] = str(exc)
        else:
            if not self.api_server:
                errors["api_server"] = "is required for token authentication."
            if not self.token:
                errors["token"] = "is required when the auth method is token."
            if self.ca_certificate:
                try:
                    kubeconfig.validate_ca_bundle(self.ca_certificate)
                except ValueError as exc:
                    errors["ca_certificate"] = str(exc)
        if errors:
            raise ValidationError(errors)


class Environment(models.Model):
    """A stage (dev, test, prod) bound to one cluster, with its release policy."""

    name = models.CharField(max_length=ENVIRONMENT_NAME_MAX, unique=True, validators=[validate_dns_label])
    rank = models.PositiveSmallIntegerField(default=0, help_text="Order from first stage (dev) to last (prod).")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="environments")
    namespace_pattern = models.CharField(
        max_length=100,
        default="{project}-{environment}",
        help_text="Kubernetes namespace per project; placeholders {project} and {environment}.",
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(10)], help_text="0 approves releases automatically."
    )
    allow_self_approval = models.BooleanField(default=False)
    rollout_deadline_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(5), MaxValueValidator(3600)]
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rank", "name"]

    def __str__(self) -> str:
        return self.name

    def namespace_for(self, project_slug: str) -> str:
        return self.namespace_pattern.format(project=project_slug, environment=self.name)

    def clean(self) -> None:
        # The longest possible project slug must still give a valid namespace.
        try:
            sample = self.namespace_for("p" * PROJECT_SLUG_MAX)
        except (KeyError, IndexError, ValueError):
            raise ValidationError(
                {"namespace_pattern": "may only use the placeholders {project} and {environment}."}
            ) from None
        if "{project}" not in self.namespace_pattern:
            raise ValidationError({"namespace_pattern": "must contain {project}: each project needs its own namespace."})
        try:
            validate_dns_label(sample)
        except ValidationError as exc:
            raise ValidationError({"namespace_pattern": f"gives namespaces like {sample!r} that {exc.messages[0]}"}) from None


class BaseImage(models.Model):
    """The middleware catalog: a base image an application package is layered onto."""

    name = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    display_name = models.CharField(max_length=120)
    image = models.CharField(max_length=255, validators=[validate_image_reference])
    app_path = models.CharField(max_length=255, validators=[validate_absolute_path], help_text="Where the package goes.")
    config_path = models.CharField(
        max_length=255, validators=[validate_absolute_path], help_text="Where config files are mounted."
    )
    default_port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    health_path = models.CharField(
        max_length=255, blank=True, default="/", validators=[validate_absolute_path],
        help_text="HTTP health check path; empty for servers without HTTP (checked by TCP connect).",
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Application(models.Model):
    """A workload of a project: how it is built, sized, exposed and who may call it."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="applications")
    name = models.CharField(max_length=APPLICATION_NAME_MAX, validators=[validate_service_name])
    description = models.TextField(blank=True)
    base_image = models.ForeignKey(BaseImage, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    image = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_image_reference],
        help_text="Prebuilt image repository (CI pushes it; each release names the tag or digest).",
    )
    port = models.PositiveIntegerField(default=8080, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    health_path = models.CharField(
        max_length=255, blank=True, default="/healthz", validators=[validate_absolute_path],
        help_text="HTTP readiness/liveness path; empty means a TCP connect check.",
    )
    cpu_request = models.CharField(max_length=16, default="100m", validators=[validate_cpu_quantity])
    cpu_limit = models.CharField(max_length=16, default="500m", validators=[validate_cpu_quantity])
    memory_request = models.CharField(max_length=16, default="128Mi", validators=[validate_memory_quantity])
    memory_limit = models.CharField(max_length=16, default="256Mi", validators=[validate_memory_quantity])
    replicas = models.PositiveSmallIntegerField(default=1, validators=[MaxValueValidator(100)])
    autoscaling_min = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    autoscaling_max = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    autoscaling_target_cpu = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)], help_text="Target CPU %."
    )
    exposed = models.BooleanField(default=False, help_text="Reachable from outside through an Ingress.")
    smoke_check_url = models.URLField(
        blank=True, help_text="Optional URL the verify step GETs after the rollout; any 2xx/3xx passes."
    )
    allowed_callers = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="callees",
        help_text="Applications of the same project allowed to call this one (NetworkPolicy).",
    )
    uses_middleware = models.ManyToManyField(
        "MiddlewareInstance", blank=True, related_name="consumers",
        help_text="Middleware instances of the same project this application uses: their connection settings "
                  "become its environment variables, and its NetworkPolicy lets it reach them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="application_unique_name_per_project"),
            models.CheckConstraint(
                condition=(Q(base_image__isnull=False) & Q(image="")) | (Q(base_image__isnull=True) & ~Q(image="")),
                name="application_base_image_xor_image",
            ),
            models.CheckConstraint(
                condition=(
                    Q(autoscaling_min__isnull=True, autoscaling_max__isnull=True, autoscaling_target_cpu__isnull=True)
                    | Q(
                        autoscaling_min__isnull=False,
                        autoscaling_max__isnull=False,
                        autoscaling_target_cpu__isnull=False,
                        autoscaling_min__lte=models.F("autoscaling_max"),
                    )
                ),
                name="application_autoscaling_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}" if self.project_id else self.name

    @property
    def autoscaling(self) -> bool:
        return self.autoscaling_min is not None

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if bool(self.base_image_id) == bool(self.image):
            errors["image"] = "set exactly one of base_image (built by Slipway) or image (prebuilt)."
        elif self.image:
            try:
                validate_image_registry(self.image)
            except ValidationError as exc:
                errors["image"] = exc.messages[0]
        for request_field, limit_field, parse in (
            ("cpu_request", "cpu_limit", parse_cpu),
            ("memory_request", "memory_limit", parse_memory),
        ):
            try:
                if parse(getattr(self, limit_field)) < parse(getattr(self, request_field)):
                    errors[limit_field] = f"must be at least {request_field} ({getattr(self, request_field)})."
            except ValidationError:
                pass  # the field validator reports the unparsable quantity
        if self.pk and self.releases.exists():
            stored = type(self).objects.filter(pk=self.pk).values_list("name", flat=True).first()
            if stored not in (None, self.name):
                errors["name"] = (f"cannot change once {stored} has releases: its releases, revisions, cluster "
                                  "objects and DNS name carry the name. Create a new application instead.")
        if self.smoke_check_url and outbound.url_check(self.smoke_check_url):
            errors["smoke_check_url"] = outbound.url_check(self.smoke_check_url)
        scaling = (self.autoscaling_min, self.autoscaling_max, self.autoscaling_target_cpu)
        if any(v is not None for v in scaling):
            if any(v is None for v in scaling):
                errors["autoscaling_min"] = "autoscaling needs min, max and target CPU together."
            elif self.autoscaling_min > self.autoscaling_max:
                errors["autoscaling_min"] = f"must not exceed autoscaling_max ({self.autoscaling_max})."
        if errors:
            raise ValidationError(errors)


class Revision(models.Model):
    """An immutable record of what ran where: the exact objects applied to a cluster.

    Rollback re-applies an earlier revision's manifests and is itself recorded
    as a new revision; the newest revision of an (application, environment) is
    what runs there now.
    """

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="revisions")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=RevisionKind.choices, default=RevisionKind.APPLY)
    source = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="For a rollback, the revision whose manifests were re-applied.",
    )
    # The workflows.Release that produced it, by id: deployments does not depend on workflows.
    release = models.CharField(max_length=32, blank=True)
    image = models.CharField(max_length=512, blank=True)
    config_hash = models.CharField(max_length=64, blank=True)
    replicas = models.PositiveSmallIntegerField(null=True, blank=True)
    manifests = models.JSONField(default=list)
    manifests_digest = models.CharField(max_length=64)
    spec = models.JSONField(
        null=True, blank=True, help_text="The deploy spec its manifests were rendered from (a rollback: its source's)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["application", "environment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["application", "environment", "number"], name="revision_unique_number"),
        ]
        indexes = [models.Index(fields=["application", "environment", "release"])]

    def __str__(self) -> str:
        return f"{self.application} in {self.environment} #{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Revisions are immutable; record a new one instead.")
        super().save(*args, **kwargs)

    @property
    def is_live(self) -> bool:
        return self.kind != RevisionKind.DECOMMISSION


class MiddlewareInstance(models.Model):
    """An application made from a middleware template (``deployments.middleware``), e.g. a project's Redis."""

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="middleware")
    template = models.CharField(
        max_length=32, choices=[(t.name, t.display_name) for t in middleware.TEMPLATES.values()]
    )
    variables = models.JSONField(default=dict, help_text="The template's variables, defaults filled in; no secrets.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["application__project__slug", "application__name"]

    def __str__(self) -> str:
        return f"{self.application} ({self.template})"

    @property
    def project_id(self) -> int:
        return self.application.project_id

    @property
    def spec(self) -> middleware.MiddlewareTemplate:
        return middleware.TEMPLATES[self.template]


class MiddlewareCredentials(models.Model):
    """The secrets Slipway generated for an instance in one environment: encrypted, never shown."""

    instance = models.ForeignKey(MiddlewareInstance, on_delete=models.CASCADE, related_name="credentials")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    secrets = EncryptedTextField(help_text="JSON object of the template's secrets.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "middleware credentials"
        constraints = [
            models.UniqueConstraint(fields=["instance", "environment"], name="middleware_credentials_once_per_environment"),
        ]

    def __str__(self) -> str:  # names the row, never its values
        return f"credentials of {self.instance} in {self.environment}"

    @property
    def project_id(self) -> int:
        return self.instance.application.project_id

    @property
    def values(self) -> dict[str, str]:
        return json.loads(self.secrets) if self.secrets else {}
def package_upload_path(package: "Package", filename: str) -> str:
    # by content, per project: the stored name never comes from the user
    return f"packages/{package.project.slug}/{package.sha256}"


class Package(models.Model):
    """An application package uploaded to Slipway, built into images by releases of its project."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="packages")
    filename = models.CharField(max_length=200, help_text="Its file name in the image, under the base's app path.")
    file = models.FileField(upload_to=package_upload_path, max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "sha256"])]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.filename} ({self.sha256[:12]})"
