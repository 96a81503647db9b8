"""Container image references (the grammar of distribution/reference), pure."""
import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
_PATH_COMPONENT = re.compile(rf"^{_COMPONENT}\Z")
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?\Z"
)


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    tag: str
    digest: str

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository


def parse_image_reference(reference: str) -> ImageReference:
    """Split ``[registry/]repository[:tag][@sha256:…]``; ``ValueError`` if malformed."""
    match = _REFERENCE.match(reference or "")
    if not match or len(reference) > 255:
        raise ValueError(f"{reference!r} is not a valid image reference (expected registry/repository:tag or @sha256:digest)")
    domain, path = match["domain"], match["path"]
    # "library/nginx" has no registry; a first component with a dot, a port or
    # "localhost" is a registry host, as Docker reads it.
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        if not _PATH_COMPONENT.match(domain):
            raise ValueError(f"{reference!r} is not a valid image reference (repository names are lowercase)")
        path, domain = f"{domain}/{path}", ""
    return ImageReference(registry=domain or "", repository=path, tag=match["tag"] or "", digest=match["digest"] or "")
