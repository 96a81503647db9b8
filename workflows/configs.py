"""Release configuration (env vars and files): validation and normal form, pure."""
import json
import re
from typing import Any

from paas_site.errors import invalid_fields

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FILE_NAME = re.compile(r"[-._a-zA-Z0-9]{1,253}")
MAX_CONFIG_BYTES = 256 * 1024  # a ConfigMap holds at most 1 MiB; leave room
MAX_ENV_VARS = 200


def config_normalize(raw: Any) -> dict[str, dict[str, str]]:
    """``{"env": {NAME: str}, "files": {name: str}}`` or an error naming each bad entry."""
    if raw in (None, ""):
        raw = {}
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, dict):
        raise invalid_fields({"config": ["must be an object with 'env' and 'files'."]})
    unknown = set(raw) - {"env", "files"}
    if unknown:
        errors["config"] = [f"unknown keys: {', '.join(sorted(map(str, unknown)))} (only 'env' and 'files')."]
    env, files = raw.get("env", {}), raw.get("files", {})
    for part, value in (("env", env), ("files", files)):
        if not isinstance(value, dict):
            errors[f"config.{part}"] = ["must be an object of names to string values."]
    if errors:
        raise invalid_fields(errors)
    if len(env) > MAX_ENV_VARS:
        errors["config.env"] = [f"at most {MAX_ENV_VARS} variables."]
    for name, value in env.items():
        if not ENV_NAME.fullmatch(name):
            errors[f"config.env.{name}"] = ["name must be letters, digits and '_', not starting with a digit."]
        elif not isinstance(value, str):
            errors[f"config.env.{name}"] = [f"value must be a string, not {type(value).__name__}."]
    for name, content in files.items():
        if not FILE_NAME.fullmatch(name) or name == "." or name.startswith(".."):
            errors[f"config.files.{name}"] = ["file name must be letters, digits, '-', '_' or '.', without '/' or '..'."]
        elif not isinstance(content, str):
            errors[f"config.files.{name}"] = [f"content must be a string, not {type(content).__name__}."]
    if errors:
        raise invalid_fields(errors)
    normal = {"env": dict(sorted(env.items())), "files": dict(sorted(files.items()))}
    size = len(json.dumps(normal).encode())
    if size > MAX_CONFIG_BYTES:
        raise invalid_fields({"config": [f"is {size} bytes; at most {MAX_CONFIG_BYTES} bytes in all."]})
    return normal
