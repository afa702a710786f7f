"""Reading request bodies: URL-encoded and multipart forms (file uploads), with a size limit."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from ..errors import FormError

MAX_BODY = 64 * 1024 * 1024  # bytes; an upload larger than this is refused


def read_form(
    environ: dict[str, Any], limit: int = MAX_BODY
) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
    """The fields (name -> values) and files (name -> (filename, data)) of a POST body; a body
    longer than ``limit`` bytes (by its Content-Length) is refused before the application reads any
    of it (the WSGI server has received it by then)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise FormError("bad Content-Length") from None
    if length > limit:
        size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
        raise FormError(f"request body over {size}")
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    content_type = environ.get("CONTENT_TYPE", "")
    fields: dict[str, list[str]] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise FormError("malformed multipart body")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[str(name)] = (filename, data)
            else:
                fields.setdefault(str(name), []).append(data.decode("utf-8", "replace"))
    else:
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(name, []).append(value)
    return fields, files
