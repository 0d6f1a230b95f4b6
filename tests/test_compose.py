"""docker-compose.yml, api/Dockerfile, app/Dockerfile and .dockerignore, checked without Docker.

The build machine has no Docker engine, so no test here starts a container. What can be checked
without one is checked for real: the compose file against the Compose Specification's JSON schema
(tests/data/compose-spec.json, see tests/data/README.md); every path it and the Dockerfiles name;
every command a service runs against the project's real entry points; the API healthcheck against
a running API; the C worker's build stage replayed on exactly the files its image copies, and the
binary's shared libraries against the runtime packages the image installs; the Python image's
`pip install` replayed on exactly the files it copies; the apt packages against Debian bookworm
and the project's system package lists (scripts/system-packages-run.txt, what `make run` installs,
and scripts/system-packages-test.txt, what only the tests need).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
SCHEMA_FILE = REPO / "tests" / "data" / "compose-spec.json"
RUN_PACKAGES_FILE = REPO / "scripts" / "system-packages-run.txt"
TEST_PACKAGES_FILE = REPO / "scripts" / "system-packages-test.txt"
REQUIRED_SERVICES = ("redis", "api", "worker", "popular-banco")
# Services that run the project's code (redis runs the official image as it is).
PROJECT_SERVICES = ("api", "worker", "popular-banco", "worker-python")
C_WORKER_COMMAND = "relatorios-worker-c"
# gcc only Recommends libc6-dev: a plain `apt-get install gcc` on a developer's machine brings it,
# the image's `--no-install-recommends` does not, so the image names it and the list need not.
BUILD_ONLY_EXTRAS = {"libc6-dev"}
# Shared libraries the C worker loads with dlopen() rather than links (soname -> Debian package).
DLOPENED = {"libpq.so.5": "libpq5", "libxlsxwriter.so.4": "libxlsxwriter4"}


# --- Dockerfiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def copies(self) -> list[Copy]:
        return [parse_copy(args) for args in self.args("COPY")]

    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for args in self.args("ENV"):
            merged.update(parse_env(args))
        return merged

    def workdir(self) -> str:
        path = "/"
        for args in self.args("WORKDIR"):
            path = posixpath.join(path, args.strip())
        return path

    def user(self) -> str:
        users = self.args("USER")
        return users[-1].strip() if users else "root"

    def cmd(self) -> list[str]:
        cmds = self.args("CMD")
        assert cmds, f"stage {self.name or self.base} has no CMD"
        exec_form = json.loads(cmds[-1]) if cmds[-1].startswith("[") else None
        # Shell form runs under /bin/sh, which does not pass SIGTERM on: `docker compose stop`
        # would wait out the grace period and kill the worker mid-report.
        assert isinstance(exec_form, list), f"CMD must use the exec (JSON) form: {cmds[-1]}"
        return [str(word) for word in exec_form]

    def apt_packages(self) -> set[str]:
        packages: set[str] = set()
        for run in self.args("RUN"):
            for command in re.split(r"&&|\|\||;", run):
                words = command.split()
                if "apt-get" in words and "install" in words:
                    after = words[words.index("install") + 1 :]
                    packages |= {w for w in after if not w.startswith("-")}
        return packages


@dataclass(frozen=True)
class Image:
    """An image a compose service builds: its Dockerfile, parsed, and its build context."""

    dockerfile: Path
    context: Path
    stages: tuple[Stage, ...]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        matches = [s for s in self.stages if s.name == name]
        assert matches, f"{self.dockerfile}: no stage named {name}"
        return matches[0]


def logical_lines(text: str) -> Iterator[str]:
    """Instructions with `\\` continuations joined; comment and blank lines dropped (as Docker)."""
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        yield (buffer + line).strip()
        buffer = ""
    if buffer.strip():
        yield buffer.strip()


def parse_dockerfile(path: Path) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for line in logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{path}: {keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, args.strip()))
    assert stages, f"{path} has no FROM"
    return tuple(stages)


def parse_copy(args: str) -> Copy:
    words = shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    if words and words[0].startswith("["):
        words = json.loads(" ".join(words))
    assert len(words) >= 2, f"COPY needs a source and a destination: {args}"
    return Copy(tuple(words[:-1]), words[-1], flags.get("from"))


def parse_env(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


# --- .dockerignore -------------------------------------------------------------------------------


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore globs: `*` and `?` stay inside one path part, `**` crosses parts."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@cache
def dockerignore_rules() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    rules = []
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negate, _glob_to_regex(pattern)))
    return tuple(rules)


def is_ignored(relative: str) -> bool:
    """True when .dockerignore keeps this path (relative to the context) out of the build."""
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    ignored = False
    for negate, regex in dockerignore_rules():
        # A pattern that matches a folder excludes everything in it, as in Docker.
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


# --- compose -------------------------------------------------------------------------------------

_VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")
# What `make compose-env` writes to .env: the only variable a `docker compose up` needs.
ENV_FILE = {"REDIS_PASSWORD": "senha-do-env"}


def interpolate(value: Any) -> Any:
    """Compose's `${NAME:-default}` and `${NAME:?error}` with only .env's variables set, i.e. what
    `make compose-env && docker compose up` sees."""
    if isinstance(value, str):

        def default(match: re.Match[str]) -> str:
            name, kind, text = match.groups()
            if kind == "?":
                assert name in ENV_FILE, f"${{{name}}} is required but not written by compose-env"
                return ENV_FILE[name]
            assert kind == "-", f"${{{name}}} has no default"
            return str(text)

        return _VARIABLE_RE.sub(default, value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


@cache
def raw_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


@cache
def compose() -> dict[str, Any]:
    interpolated = interpolate(raw_compose())
    assert isinstance(interpolated, dict)
    return interpolated


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    spec = services[name]
    assert isinstance(spec, dict)
    return spec


def image_of(name: str) -> Image:
    build = service(name).get("build")
    assert build is not None, f"service {name} builds no image"
    if isinstance(build, str):
        build = {"context": build}
    context = (REPO / build["context"]).resolve()
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    return Image(dockerfile, context, parse_dockerfile(dockerfile))


def command_of(name: str) -> list[str]:
    command = service(name).get("command")
    if command is None:
        return image_of(name).final.cmd()
    assert isinstance(command, list), f"{name}: command must be a list (no shell in between)"
    return [str(word) for word in command]


def environment_of(name: str) -> dict[str, str]:
    """The image's ENV overlaid with the service's `environment`, as the container sees it."""
    env = image_of(name).final.env() if "build" in service(name) else {}
    declared = service(name).get("environment", {})
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared)
    env.update({k: str(v) for k, v in declared.items()})
    return env


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


def mounts_of(name: str) -> list[Mount]:
    mounts = []
    for volume in service(name).get("volumes", []):
        assert isinstance(volume, str), f"{name}: use the short volume syntax (source:target[:ro])"
        source, target, *mode = volume.split(":")
        mounts.append(Mount(source, target, mode == ["ro"]))
    return mounts


def mount_at(name: str, source: str) -> Mount:
    matches = [m for m in mounts_of(name) if m.source == source]
    assert matches, f"service {name} does not mount {source}"
    return matches[0]


def project_services() -> list[str]:
    return [name for name in PROJECT_SERVICES if name in compose()["services"]]


# --- the compose file ----------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    for document in (raw_compose(), compose()):
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)
        ]
        assert not errors, "docker-compose.yml breaks the Compose Specification:\n" + "\n".join(
            errors
        )


def test_docker_compose_up_needs_only_the_env_file_of_make_compose_env(tmp_path: Path) -> None:
    # interpolate() fails on a ${NAME} without a default; this makes the failure a test of its own.
    assert compose()["services"]
    for name in REQUIRED_SERVICES:
        service(name)
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    for _ in range(2):  # the second run keeps the first password
        subprocess.run(["make", "-s", "compose-env"], cwd=tmp_path, check=True, capture_output=True)
    written = (tmp_path / ".env").read_text().splitlines()
    assert len(written) == 1 and written[0].startswith("REDIS_PASSWORD=")
    assert len(written[0].split("=", 1)[1]) >= 43
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600


def test_redis_requires_the_password_and_never_evicts() -> None:
    command = service("redis")["command"]
    password = ENV_FILE["REDIS_PASSWORD"]
    assert command[command.index("--requirepass") + 1] == password
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert service("redis")["environment"]["REDISCLI_AUTH"] == password  # the healthcheck's
    for name in PROJECT_SERVICES:
        if name != "popular-banco":
            assert environment_of(name)["REDIS_URL"] == f"redis://:{password}@redis:6379/0", name


def test_redis_is_the_official_image_persisting_to_a_named_volume() -> None:
    redis = service("redis")
    assert "/" not in redis["image"].split(":")[0], "use the official `redis` image"
    assert redis["image"].startswith("redis:")
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    data = next(m for m in mounts_of("redis") if m.target == "/data")
    assert data.source in (compose().get("volumes") or {}), "Redis /data must be a named volume"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_services_wait_for_a_healthy_redis_and_the_database() -> None:
    for name in ("api", "worker"):
        depends = service(name)["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
        # The API reads the department names at start-up and the workers open the database.
        assert depends["popular-banco"]["condition"] == "service_completed_successfully", name
    assert service("popular-banco").get("restart", "no") == "no", "popular-banco is one-shot"


def test_api_publishes_port_8000_and_checks_its_health() -> None:
    api = service("api")
    assert api["ports"] == ["127.0.0.1:8000:8000"], "published on loopback unless API_BIND says"
    assert environment_of("api")["HOST"] == "0.0.0.0", "the API must listen beyond loopback"
    assert environment_of("api")["PORT"] == "8000"
    test = " ".join(api["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/health" in test


def test_data_and_export_are_bind_mounted_where_the_processes_look() -> None:
    database = PurePosixPath(environment_of("popular-banco")["DB_PATH"])
    assert database.is_absolute(), f"container paths are absolute: {database}"
    generator = command_of("popular-banco")
    assert generator[generator.index("--saida") + 1] == str(database)
    assert mount_at("popular-banco", "./data").target == str(database.parent)
    for name in project_services():
        env = environment_of(name)
        if name != "popular-banco":
            assert env["DB_PATH"] == str(database), name
            assert "@redis:6379/" in env["REDIS_URL"], name
            data = mount_at(name, "./data")
            assert data.target == str(database.parent) and data.read_only, name
            export = mount_at(name, "./export")
            assert export.target == env["EXPORT_DIR"] and not export.read_only, name
        catalog = env["CATALOG_DIR"]
        copied = {
            posixpath.join(image_of(name).final.workdir(), c.dest).rstrip("/")
            for c in image_of(name).final.copies()
            if c.sources == ("catalog/",) and c.from_stage is None
        }
        assert catalog in copied, f"{name}: CATALOG_DIR={catalog} is not where catalog/ is copied"


def test_generated_database_opens_from_a_read_only_mount(sample_db: Path) -> None:
    # A WAL database needs its -shm file writable even to read, which a `:ro` bind mount forbids.
    # Bytes 18 and 19 of the SQLite header are 1 for rollback-journal mode and 2 for WAL.
    assert any(mount_at(name, "./data").read_only for name in ("api", "worker"))
    header = sample_db.read_bytes()[:20]
    assert header[18:20] == b"\x01\x01", "the generator leaves the database in WAL mode"


def test_worker_can_be_scaled_on_one_queue() -> None:
    worker = service("worker")
    # A fixed container name or a published host port would make `--scale worker=4` fail.
    assert "container_name" not in worker
    assert "ports" not in worker
    names = {environment_of(n)["QUEUE_NAME"] for n in ("api", "worker")}
    assert names == {"fila_relatorios"}, "API and workers must share one queue"


def test_project_containers_run_as_a_non_root_user() -> None:
    for name in project_services():
        user = service(name).get("user") or image_of(name).final.user()
        assert user.split(":")[0] not in ("root", "0"), f"{name} runs as root"
        assert image_of(name).final.user() not in ("root", "0"), f"{name}'s image runs as root"


def test_c_worker_image_compiles_in_one_stage_and_runs_in_a_slim_one() -> None:
    image = image_of("worker")
    assert len(image.stages) >= 2, "app/Dockerfile must be a multi-stage build"
    final = image.final
    assert final.base.startswith("debian:") and "slim" in final.base
    runtime = final.apt_packages()
    assert runtime, "the runtime stage installs the shared libraries"
    assert not {p for p in runtime if p.endswith("-dev")}, "no -dev package at run time"
    assert not runtime & {"gcc", "make", "pkg-config", "clang"}, "no compiler at run time"
    copied = [c for c in final.copies() if c.from_stage]
    assert copied, "the runtime stage copies the binary from the build stage"
    build = image.stage(copied[0].from_stage or "")
    assert {p for p in build.apt_packages() if p.endswith("-dev")}, "build stage has no -dev"


def test_dockerignore_keeps_local_state_out_of_the_images() -> None:
    for path in (
        ".venv/bin/python",
        "data/empresa.db",
        "export/relatorio_X.csv",
        "app/build/worker",
        ".git/HEAD",
        "relatorios/__pycache__/cli.cpython-311.pyc",
    ):
        assert is_ignored(path), f".dockerignore lets {path} into the build context"


# --- paths and entry points ----------------------------------------------------------------------


def test_every_referenced_path_exists_and_reaches_the_build() -> None:
    for name in compose()["services"]:
        for mount in mounts_of(name):
            if mount.source.startswith("."):
                assert (REPO / mount.source).is_dir(), f"{name}: {mount.source} is missing"
        if "build" not in service(name):
            continue
        image = image_of(name)
        assert image.context.is_dir() and image.dockerfile.is_file(), name
        for stage in image.stages:
            for copy in stage.copies():
                if copy.from_stage:
                    continue
                for source in copy.sources:
                    assert (image.context / source).exists(), f"{image.dockerfile}: {source}"
                    assert not is_ignored(posixpath.normpath(source)), (
                        f".dockerignore drops {source}, which {image.dockerfile} copies"
                    )


def relatorios_script() -> Path:
    script = Path(sys.executable).parent / "relatorios"
    assert script.is_file(), f"console script not installed next to {sys.executable}"
    return script


def test_services_run_the_projects_real_entry_points() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    c_worker_seen = False
    for name in project_services():
        command = command_of(name)
        if command[0] == C_WORKER_COMMAND:
            assert_c_worker_binary_comes_from_the_build_stage(name)
            c_worker_seen = True
            continue
        assert command[0] in scripts, f"{name}: {command[0]} is no console script of pyproject"
        assert_subcommand_accepts(command)
    assert c_worker_seen, "no service runs the C worker"


def assert_subcommand_accepts(command: list[str]) -> None:
    """`relatorios <sub> --help` succeeds and lists every option the service passes."""
    help_run = subprocess.run(
        [str(relatorios_script()), command[1], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert help_run.returncode == 0, f"{command[:2]} --help failed:\n{help_run.stderr}"
    for option in (word for word in command[2:] if word.startswith("--")):
        assert option in help_run.stdout, f"`{' '.join(command[:2])}` has no option {option}"


def assert_c_worker_binary_comes_from_the_build_stage(name: str) -> None:
    image = image_of(name)
    installs = [c for c in image.final.copies() if c.from_stage]
    dest = [c for c in installs if c.dest == f"/usr/local/bin/{C_WORKER_COMMAND}"]
    assert dest, f"{image.dockerfile}: nothing installs /usr/local/bin/{C_WORKER_COMMAND}"
    build = image.stage(dest[0].from_stage or "")
    targets = [m[1] for run in build.args("RUN") if (m := re.search(r"make -C app (\S+)", run))]
    assert targets, f"{image.dockerfile}: the build stage does not run app/Makefile"
    # The file copied out is the Makefile target the stage built (the replayed build checks
    # that the target really produces it).
    assert dest[0].sources == (posixpath.join(build.workdir(), "app", targets[-1]),)


# --- system packages -----------------------------------------------------------------------------


def system_packages(path: Path) -> set[str]:
    assert path.is_file(), (
        f"{path.relative_to(REPO)} is missing: the Makefile installs the Debian packages it "
        "lists, and the Dockerfiles are checked against it"
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    return {w for line in lines for w in line.split("#", 1)[0].split()}


def test_c_build_stage_installs_what_the_makefile_needs() -> None:
    listed = system_packages(RUN_PACKAGES_FILE)  # what `make run` installs to build the worker
    needed = {p for p in listed if p.startswith("lib") and p.endswith("-dev")}
    needed |= listed & {"gcc", "make", "pkg-config"}
    assert {"libhiredis-dev", "libsqlite3-dev", "libcjson-dev"} <= needed
    image = image_of("worker")
    build_stages = image.stages[:-1]
    installed = set().union(*(s.apt_packages() for s in build_stages))
    assert needed <= installed, f"the C build stage lacks {sorted(needed - installed)}"
    extra = installed - listed - BUILD_ONLY_EXTRAS
    assert not extra, f"the C build stage installs packages the Makefile does not: {extra}"


def test_no_image_installs_what_only_the_tests_need() -> None:
    test_only = system_packages(TEST_PACKAGES_FILE)
    assert {"chromium", "clang", "valgrind"} <= test_only
    assert not test_only & system_packages(RUN_PACKAGES_FILE), "a package is in both lists"
    for name in ("worker", "api"):
        for stage in image_of(name).stages:
            assert not stage.apt_packages() & test_only, f"{name} installs a test-only package"


def apt_lists_available() -> bool:
    if shutil.which("apt-cache") is None:
        return False
    policy = subprocess.run(["apt-cache", "policy", "gcc"], capture_output=True, text=True)
    return "Candidate:" in policy.stdout and "(none)" not in policy.stdout


def test_apt_packages_exist_in_debian_bookworm() -> None:
    os_release = Path("/etc/os-release").read_text(encoding="utf-8")
    if "VERSION_CODENAME=bookworm" not in os_release or not apt_lists_available():
        pytest.skip("needs a Debian bookworm host with apt lists (apt-get update)")
    packages: set[str] = set()
    for name in ("worker", "api"):
        for stage in image_of(name).stages:
            assert "bookworm" in stage.base, f"{name}: {stage.base} is not a bookworm image"
            packages |= stage.apt_packages()
    # One apt-cache for all of them (it loads its cache each time: about a second); its exit
    # status says nothing when only some are unknown, so the stanzas are counted, and when one is
    # missing the loop below asks for each to name which.
    every = ["apt-cache", "show", "--no-all-versions", *sorted(packages)]
    shown = subprocess.run(every, capture_output=True, text=True, check=False).stdout
    if not packages <= set(re.findall(r"^Package: (\S+)$", shown, re.MULTILINE)):
        for package in sorted(packages):
            show = subprocess.run(
                ["apt-cache", "show", "--no-all-versions", package],
                capture_output=True,
                text=True,
                check=False,
            )
            assert show.returncode == 0 and show.stdout, f"{package} is not a bookworm package"


def test_python_image_satisfies_requires_python() -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    floor = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires)
    assert floor, f"requires-python {requires!r} is not of the form >=3.X"
    tag = re.match(r"python:(\d+)\.(\d+)", image_of("api").final.base)
    assert tag, "the Python image pins a minor version (python:3.X-...)"
    assert (int(tag[1]), int(tag[2])) >= (int(floor[1]), int(floor[2]))


# --- builds replayed without Docker --------------------------------------------------------------


def replay_copies(image: Image, stage: Stage, root: Path) -> None:
    """Copy what `stage` COPYs from the context (less .dockerignore) under `root`, as `/`."""
    workdir = "/"
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, instruction.args)
            (root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        if instruction.keyword != "COPY":
            continue
        copy = parse_copy(instruction.args)
        if copy.from_stage:
            continue
        target = root / posixpath.join(workdir, copy.dest).lstrip("/")
        for source in copy.sources:
            origin = image.context / source
            files = sorted(origin.rglob("*")) if origin.is_dir() else [origin]
            for file in files:
                relative = file.relative_to(image.context).as_posix()
                if not file.is_file() or is_ignored(relative):
                    continue
                inside = file.relative_to(origin) if origin.is_dir() else Path(file.name)
                if not origin.is_dir() and not copy.dest.endswith("/"):
                    destination = target
                else:
                    destination = target / inside
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, destination)


def test_c_worker_builds_from_what_its_image_copies_and_needs_only_its_runtime_packages(
    tmp_path: Path,
) -> None:
    image = image_of("worker")
    install = next(c for c in image.final.copies() if c.from_stage)
    build = image.stage(install.from_stage or "")
    replay_copies(image, build, tmp_path)
    for run in build.args("RUN"):
        if "apt-get" in run:
            continue  # installed on this machine (scripts/system-packages-run.txt)
        cwd = tmp_path / build.workdir().lstrip("/")
        done = subprocess.run(
            ["sh", "-c", run], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"`{run}` failed on the copied files:\n{done.stderr[-3000:]}"
    binary = tmp_path / install.sources[0].lstrip("/")
    assert binary.is_file() and os.access(binary, os.X_OK), f"the build made no {binary}"

    needed = packages_of_shared_libraries(binary) - {"libc6"}  # libc6 is in every Debian image
    # Libraries the worker opens with dlopen() (app/pq.h: libpq, for DATABASE_URL): named in the
    # binary, and owned by the package the image installs for them.
    for soname, package in DLOPENED.items():
        assert soname.encode() in binary.read_bytes(), f"the worker no longer opens {soname}"
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        path = re.search(rf"^\s*{re.escape(soname)} .*=> (\S+)$", cache, re.M)
        assert path, f"{soname} is not installed"
        assert debian_package_owning(path.group(1)) == package
        needed.add(package)
    assert needed == image.final.apt_packages(), (
        f"the binary links against {sorted(needed)} (plus libc6); the runtime stage installs "
        f"{sorted(image.final.apt_packages())}"
    )


def packages_of_shared_libraries(binary: Path) -> set[str]:
    """The Debian packages owning the shared libraries `binary` links against directly (its
    NEEDED entries, found where ldd resolves them, then dpkg -S). Their own dependencies come
    with them through apt (libpq5 alone brings Kerberos, LDAP and TLS libraries)."""
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
    assert "not found" not in ldd.stdout, ldd.stdout
    where = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M))
    dynamic = subprocess.run(
        ["readelf", "-d", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dynamic)
    assert needed, dynamic
    return {debian_package_owning(where[name]) for name in needed}


def debian_package_owning(path: str) -> str:
    # With merged /usr, ldd may print /lib/... for a file dpkg registered as /usr/lib/... (or the
    # other way round), and the soname may be a symlink: try each spelling of the same file.
    spellings = []
    for candidate in (path, os.path.realpath(path)):
        bare = candidate.removeprefix("/usr")
        spellings += [candidate, bare, "/usr" + bare]
    for spelling in dict.fromkeys(spellings):
        owner = subprocess.run(["dpkg", "-S", spelling], capture_output=True, text=True)
        if owner.returncode == 0:
            return owner.stdout.split(":")[0].strip()
    raise AssertionError(f"no Debian package owns {path}")


def test_python_package_installs_from_what_its_image_copies(tmp_path: Path) -> None:
    image = image_of("api")
    stage = image.final
    install = [r for r in stage.args("RUN") if r.startswith("pip install ")]
    assert install, "api/Dockerfile installs the project with `pip install <folder>`"
    source = install[0].split()[2]
    replay_copies(image, stage, tmp_path / "root")
    project = tmp_path / "root" / source.lstrip("/")
    dist = tmp_path / "dist"
    dist.mkdir()
    # setuptools' PEP 517 hook is what `pip install` runs; calling it directly needs no network.
    hook = f"from setuptools import build_meta; print(build_meta.build_wheel({str(dist)!r}))"
    built = subprocess.run(
        [sys.executable, "-c", hook],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, f"no build from the copied files:\n{built.stderr}"
    with zipfile.ZipFile(dist / built.stdout.strip().splitlines()[-1]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "relatorios = relatorios.cli:main" in wheel.read(entry_points).decode()
    shipped = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "relatorios").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    missing = shipped - names
    assert not missing, f"`pip install .` leaves out {sorted(missing)} (package data?)"


# --- healthcheck against the real API ------------------------------------------------------------


def run_api_healthcheck(port: int) -> int:
    test = service("api")["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    code = test[3].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    ).returncode


@contextmanager
def running_api(env: dict[str, str], port: int) -> Iterator[None]:
    env = dict(env, HOST="127.0.0.1", PORT=str(port))
    api = subprocess.Popen(
        [str(relatorios_script()), "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_open(port), 30, "the API to listen")
        yield
    finally:
        api.terminate()
        api.wait(10)


def test_api_healthcheck_passes_only_when_the_system_can_produce_reports(
    worker_env: Any, start_worker: Callable[..., Any], tmp_path: Path
) -> None:
    """The compose healthcheck's own command, against real `relatorios api` processes.

    worker_env and start_worker come from tests/conftest.py (a real Redis, a generated database,
    a real Python worker).
    """
    port = free_port()
    assert run_api_healthcheck(port) != 0, "healthcheck passes with no API listening"
    with running_api(worker_env.environ(), port):
        # /health is the system's health: 503 until some worker's heartbeat is in Redis.
        assert run_api_healthcheck(port) != 0, "healthcheck passes with no worker alive"
        start_worker("python", worker_env)
        wait_until(lambda: run_api_healthcheck(port) == 0, 30, "the healthcheck to pass")
    without_database = dict(worker_env.environ(), DB_PATH=str(tmp_path / "ausente.db"))
    with running_api(without_database, port):
        assert run_api_healthcheck(port) != 0, "healthcheck passes without the database"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_postgres_profile_loads_the_data_every_service_can_read() -> None:
    services = compose()["services"]
    profile = {n for n, spec in services.items() if "postgres" in spec.get("profiles", [])}
    assert profile == {"postgres", "popular-banco-postgres"}
    server = service("postgres")
    assert server["image"].startswith("postgres:15"), "the version the tests run against"
    data = next(m for m in mounts_of("postgres") if m.target == "/var/lib/postgresql/data")
    assert data.source in (compose().get("volumes") or {}), "PostgreSQL data on a named volume"
    assert "pg_isready" in " ".join(server["healthcheck"]["test"])
    env = server["environment"]
    url = f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/"
    loader = command_of("popular-banco-postgres")
    assert_subcommand_accepts(loader)
    assert loader[loader.index("--url") + 1] == url + env["POSTGRES_DB"]
    assert service("popular-banco-postgres")["depends_on"]["postgres"]["condition"] == (
        "service_healthy"
    )
    # DATABASE_URL passes from the host to the API and the workers; unset, they read SQLite.
    raw = raw_compose()["services"]
    for name in ("api", "worker", "worker-python"):
        assert raw[name]["environment"]["DATABASE_URL"] == "${DATABASE_URL:-}", name
        assert environment_of(name)["DATABASE_URL"] == "", name
