import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from deployments.choices import FINANCE_GROUP, Role
from deployments.models import Application, BaseImage, Cluster, Environment, Project, ProjectMembership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def finance(user, create, extracted, **kwargs):
        if extracted:
            user.groups.add(Group.objects.get_or_create(name=FINANCE_GROUP)[0])


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project{n}")
    name = factory.LazyAttribute(lambda p: p.slug.title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProjectMembership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.DEVELOPER


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    name = factory.Sequence(lambda n: f"cluster{n}")
    api_server = "https://kube.example.com:6443"
    auth_method = "token"
    token = "s3cret-token"
    ingress_address = "10.0.0.10"


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment

    name = factory.Sequence(lambda n: f"env{n}")
    cluster = factory.SubFactory(ClusterFactory)
    required_approvals = 1


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"app{n}")
    image = "registry.example.com/team/app"


BASE_DIGEST = "sha256:" + "b" * 64


def base_image(name: str = "tomcat") -> BaseImage:
    """A catalog entry pinned by digest (filing needs no registry); recreated if a test flushed the catalog."""
    image, _ = BaseImage.objects.get_or_create(
        name=name,
        defaults={"display_name": name.title(), "image": f"slipway/base/{name}:1", "app_path": "/app",
                  "config_path": "/etc/app", "default_port": 8080},
    )
    if "@" not in image.image:
        image.image = f"{image.image}@{BASE_DIGEST}"
        image.save(update_fields=["image"])
    return image


def middleware_instance(project, template: str = "redis", name: str = "cache", **variables):
    """An instance as the service creates it (without its release); its image is a made-up repository."""
    from deployments import middleware
    from deployments.models import MiddlewareInstance

    spec = middleware.TEMPLATES[template]
    values = middleware.variables_validate(spec, variables)
    application = Application.objects.create(
        project=project, name=name, image=f"registry.example.com/base/{template}", port=spec.port,
        health_path=spec.health_path, **spec.resources(values),
    )
    return MiddlewareInstance.objects.create(application=application, template=template, variables=values)


def deploy_spec(app: Application, env: Environment, *, hostname: str | None = None):
    """The deploy spec a release of ``app`` to ``env`` would freeze now, as filing captures it."""
    from deployments.snapshots import spec_capture

    return spec_capture(application_id=app.id, environment_id=env.id, hostname=hostname)
