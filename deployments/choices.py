from django.db import models


class Role(models.TextChoices):
    DEVELOPER = "developer", "Developer"
    APPROVER = "approver", "Approver"
    MAINTAINER = "maintainer", "Maintainer"


class ClusterAuth(models.TextChoices):
    TOKEN = "token", "Bearer token (+ CA certificate)"
    KUBECONFIG = "kubeconfig", "kubeconfig"


FINANCE_GROUP = "finance"


class RevisionKind(models.TextChoices):
    APPLY = "apply", "Applied"
    ROLLBACK = "rollback", "Rolled back to an earlier revision"
    DECOMMISSION = "decommission", "Decommissioned"
