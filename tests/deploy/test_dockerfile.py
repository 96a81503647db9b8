"""The Dockerfile (not built here: no container engine), parsed with dockerfile-parse and held to the manifests."""

from __future__ import annotations

import json
import re
import sys

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.conftest import REPO, find


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=(REPO / "Dockerfile").open("rb"))
    return parser


def instructions(dockerfile: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in dockerfile.structure if i["instruction"] == name]


def test_two_stages_on_a_pinned_base_of_the_python_the_tests_run_on(dockerfile):
    [base_arg] = [a for a in instructions(dockerfile, "ARG") if a.startswith("PYTHON_IMAGE=")]
    base = base_arg.split("=", 1)[1]
    stages = instructions(dockerfile, "FROM")

    assert stages == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]
    # an exact patch release (or a digest), never a moving tag such as python:3.11-slim
    match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert match, base
    assert match.group(1) == ".".join(map(str, sys.version_info[:3]))
    assert any(i.startswith("--from=builder ") for i in instructions(dockerfile, "COPY"))


def test_runs_as_the_non_root_user_the_manifests_require(dockerfile, rendered):
    [user] = instructions(dockerfile, "USER")
    beat = find(rendered["production"], "Deployment", "slipway-beat")["spec"]["template"]["spec"]

    assert dockerfile.structure[-1]["instruction"] == "CMD"
    assert user == "10001:10001"
    assert beat["securityContext"]["runAsUser"] == 10001 and beat["securityContext"]["runAsGroup"] == 10001


def test_its_command_is_the_web_command_of_the_manifests(dockerfile, rendered):
    [cmd] = instructions(dockerfile, "CMD")
    [web] = find(rendered["production"], "Deployment", "slipway-web")["spec"]["template"]["spec"]["containers"]

    assert json.loads(cmd) == web["command"]


def test_static_files_are_collected_at_build_and_no_secret_is_baked_in(dockerfile):
    runs = instructions(dockerfile, "RUN")
    baked = [i["value"].split("=", 1)[0] for i in dockerfile.structure if i["instruction"] in ("ENV", "ARG")]
    env_names = [name for line in instructions(dockerfile, "ENV") for name in re.findall(r"(\w+)=", line)]

    assert any("manage.py collectstatic --noinput" in run for run in runs)
    assert [name for name in baked + env_names if re.search(r"SECRET|_KEYS|PASSWORD|TOKEN|DATABASE_URL", name)] == []
    assert dockerfile.envs["STATIC_ROOT"] == "/app/static"


def test_only_test_and_lint_tools_are_left_out_of_the_image(dockerfile):
    [install] = [run for run in instructions(dockerfile, "RUN") if "runtime-requirements.txt" in run]
    excluded = re.search(r"\^\(([^)]*)\)==", install).group(1).split("|")
    pinned = {line.split("==")[0].split("[")[0].lower() for line in (REPO / "requirements.txt").read_text().splitlines()
              if "==" in line}

    assert set(excluded) <= pinned  # a stale name would let the package it meant into the image
    assert {"gunicorn", "django", "celery", "psycopg"} <= pinned - set(excluded)
