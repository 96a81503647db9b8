"""Bounded request bodies: nothing larger than its limit is read, parsed or spooled.

A body is judged by its declared length before any of it is read (WSGI reads no more than that
length, so a body cannot outgrow it): ``DATA_UPLOAD_MAX_MEMORY_SIZE`` for everything, and room for
one package (``SLIPWAY_PACKAGE_MAX_BYTES``) in a multipart upload, whose file part stops being
stored once it passes that size (and is then refused by its size, naming the field). The answer is
a 413 — JSON ``{"message", "code", "extra"}`` under ``/api/`` — whatever ``DEBUG`` says, never an
error page.
"""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse

CODE = "request_too_large"


class PackageTooLarge(RequestDataTooBig):
    """An uploaded file passed ``SLIPWAY_PACKAGE_MAX_BYTES``; reading stopped there."""


def body_limit(request: HttpRequest) -> int:
    """How many bytes the body of ``request`` may declare."""
    if request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/form-data"):
        return settings.SLIPWAY_PACKAGE_MAX_BYTES + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large(request: HttpRequest, message: str, *, limit: int, status: int = 413) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        return JsonResponse({"message": message, "code": CODE, "extra": {"limit_bytes": limit}}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RequestBodyLimitMiddleware:
    """Refuses a body longer than its limit by its Content-Length; maps Django's own limits to 413/400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            return too_large(request, f"Content-Length: {raw[:40]!r} is not a length in bytes.", limit=0, status=400)
        limit = body_limit(request)
        if length > limit:
            return too_large(request, f"The request body is {length} bytes; the limit is {limit} bytes.", limit=limit)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, PackageTooLarge):
            limit = settings.SLIPWAY_PACKAGE_MAX_BYTES
            return too_large(request, f"file: is larger than the package limit of {limit} bytes.", limit=limit)
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return too_large(request, f"The form fields are larger than {limit} bytes.", limit=limit)
        if isinstance(exception, TooManyFieldsSent):
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            return too_large(request, f"The request has more than {limit} fields.", limit=limit, status=400)
        return None


class OversizedUpload(UploadedFile):
    """What an upload past the package limit becomes: its name and the size it reached, and no content.

    Nothing of it past the limit was kept; the service refuses it by ``size`` (a 400 naming the field),
    and reading it is a bug, so it raises rather than yield a truncated package.
    """

    def __init__(self, *, name: str, content_type: str, size: int):
        super().__init__(file=None, name=name, content_type=content_type, size=size)

    def open(self, mode=None):
        raise PackageTooLarge(f"{self.name}: cut at the package limit")

    def read(self, *args):
        raise PackageTooLarge(f"{self.name}: cut at the package limit")

    def chunks(self, chunk_size=None):
        raise PackageTooLarge(f"{self.name}: cut at the package limit")

    def close(self) -> None:
        return None


class PackageSizeUploadHandler(FileUploadHandler):
    """First in ``FILE_UPLOAD_HANDLERS``: past ``SLIPWAY_PACKAGE_MAX_BYTES`` a file's bytes go nowhere.

    The handlers after it (memory, then a temporary file) stop receiving the file's data at the limit,
    and the file arrives as an :class:`OversizedUpload` of the size it reached — the rest of the body,
    bounded by :class:`RequestBodyLimitMiddleware`, is read past, not spooled.
    """

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        return None if self.received > settings.SLIPWAY_PACKAGE_MAX_BYTES else raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.received > settings.SLIPWAY_PACKAGE_MAX_BYTES:
            return OversizedUpload(name=self.file_name, content_type=self.content_type, size=self.received)
        return None
