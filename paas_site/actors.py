"""Who does something: a signed-in user, or a named component of the platform. Nothing else is an actor.

A bare string is not an actor: ``actor_check`` (and with it every service and
the audit writer) refuses one with ``TypeError``, so no caller can skip a
permission check by passing ``"system:..."``. A ``SystemActor`` holds no user
rights: the permissions selector grants it nothing a user must be allowed to do.
"""
import re
from dataclasses import dataclass
from typing import TypeAlias

from django.contrib.auth.models import AbstractBaseUser

COMPONENT = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")


@dataclass(frozen=True)
class SystemActor:
    """A named component of the platform (the worker, the approval policy, the DNS reconciler, …)."""

    component: str

    def __post_init__(self) -> None:
        if not isinstance(self.component, str) or not COMPONENT.match(self.component):
            raise ValueError(f"A system component is a lowercase name, not {self.component!r}.")

    def __str__(self) -> str:
        return f"system:{self.component}"


Actor: TypeAlias = AbstractBaseUser | SystemActor

WORKER = SystemActor("worker")  # the release pipeline's steps and the reaper
POLICY = SystemActor("policy")  # the approval policy (zero approvals required)
DEPLOY = SystemActor("deploy")  # what a deploy creates besides the manifests (middleware credentials)
DNS = SystemActor("dns")  # publishing and reconciling DNS records
BILLING = SystemActor("billing")  # metering, rating, budget alerts
BASE_IMAGES_SEED = SystemActor("base_images_seed")  # the base_images_seed command
SEED_DEMO = SystemActor("seed_demo")  # the seed_demo command (demo data, DEBUG only)
SIGNIN = SystemActor("signin")  # sign-in lockouts (django-axes)
DIRECTORY = SystemActor("directory")  # the group mapping and directory re-checks (workflows.directory)


def actor_check(actor: object) -> Actor:
    """``actor`` itself when it is a user or a ``SystemActor``; ``TypeError`` otherwise (a str above all)."""
    if isinstance(actor, AbstractBaseUser | SystemActor):
        return actor
    raise TypeError(f"An actor is a user or a SystemActor, not {type(actor).__name__} {actor!r}.")


def actor_user(actor: Actor) -> AbstractBaseUser | None:
    """The user behind ``actor``, or ``None`` for a system component."""
    return None if isinstance(actor_check(actor), SystemActor) else actor


def actor_label(actor: Actor) -> str:
    """How the audit trail names an actor: ``user:<username>`` or ``system:<component>``."""
    user = actor_user(actor)
    return str(actor) if user is None else f"user:{user.get_username()}"
