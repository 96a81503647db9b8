from django.db import models


class ZoneProvider(models.TextChoices):
    POWERDNS = "powerdns", "PowerDNS (HTTP API)"
    LOCAL = "local", "Local (records kept in Slipway; zone file export)"


class RecordType(models.TextChoices):
    A = "A", "A"
    CNAME = "CNAME", "CNAME"
    TXT = "TXT", "TXT"


# The types that give a name its address; a name holds at most one of them.
ADDRESS_TYPES = (RecordType.A.value, RecordType.CNAME.value)


class RecordStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCED = "synced", "Synced"
    ERROR = "error", "Error"
