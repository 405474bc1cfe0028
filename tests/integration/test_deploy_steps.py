"""deploy/README.md's install steps, run as written in a temporary directory standing for ``/``.

The shell block under "## Install" is the single source: it is read from the README, each
absolute path it names (``/srv/app``, ``/etc/systemd/system``, ``/etc/nginx``) is moved under
the temporary root, and ``/path/to/myproject`` becomes a small project made here. Each line
then runs in bash from the repository's root, as the README says. Commands that need root or
the real system (``useradd``, ``chown``, ``systemctl``, ``nginx``) are stand-ins on ``PATH``
that record their arguments; the test checks those. Everything else runs for real, the
virtualenv and ``pip install`` included (about 20 s: it builds this project).

Afterwards every path the units and the site name must exist under the root, gunicorn from
the new virtualenv must load the copied configuration and the app, ``systemd-analyze verify``
must pass on the copied units and ``nginx -t`` on the copied site (each skipped, with the
reason, where the tool is missing).
"""

import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import NGINX, free_port, nginx_command, read_response, wait_until

REPO = Path(__file__).resolve().parents[2]
README = REPO / "deploy" / "README.md"

# The absolute paths the steps write to, moved under the temporary root.
SYSTEM_DIRS = ("/srv/app", "/etc/systemd/system", "/etc/nginx")
PROJECT_PLACEHOLDER = "/path/to/myproject"
# Need root powers or act on the real system: recorded, not run.
RECORDED = ("useradd", "chown", "systemctl", "nginx")
# Absolute paths that may stay as they are: arguments of recorded commands, never opened here.
KEPT_ABSOLUTE = {"/usr/sbin/nologin"}

STAND_IN = """#!{python}
import json, os, sys
with open(os.environ["DEPLOY_STEPS_LOG"], "a") as log:
    log.write(json.dumps({{"step": int(os.environ["DEPLOY_STEP"]),
                          "argv": [os.path.basename(sys.argv[0]), *sys.argv[1:]]}}) + "\\n")
"""

WSGI = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def install_steps(readme: Path = README) -> list[str]:
    """The command lines of the first ``sh`` block in the README's "## Install" section."""
    section = readme.read_text().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no ```sh block in the Install section of deploy/README.md"
    lines = [line.strip() for line in block.group(1).replace("\\\n", " ").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def rewrite(text: str, root: Path, project: Path | None = None) -> str:
    """``text`` with the system directories moved under ``root`` (and the project placeholder)."""
    for path in SYSTEM_DIRS:
        # only where a path starts: after a space, "=", a quote or at the start of the text
        text = re.sub(rf"(?<![^\s='\"]){re.escape(path)}(?=[/\s;'\"]|$)", f"{root}{path}", text)
    if project is not None:
        text = text.replace(PROJECT_PLACEHOLDER, str(project))
    return text


def outside_root(line: str, root: Path, project: Path) -> list[str]:
    """Absolute paths of ``line`` that are neither under ``root`` nor the test's project."""
    found = []
    for token in shlex.split(line):
        for path in re.findall(r"(?:^|=)(/[^\s;]*)", token):
            if path in KEPT_ABSOLUTE or Path(path).is_relative_to(root) or Path(path).is_relative_to(project):
                continue
            found.append(path)
    return found


def walk(lines: list[str], base: Path) -> dict:
    """Run ``lines`` (the README's steps) with ``base / "root"`` standing for ``/``."""
    root, project, stand_ins = base / "root", base / "myproject", base / "bin"
    for directory in ("etc/systemd/system", "etc/nginx/sites-available", "etc/nginx/sites-enabled"):
        (root / directory).mkdir(parents=True)  # there on a host with systemd and nginx
    (project / "myproject").mkdir(parents=True)
    (project / "myproject" / "__init__.py").write_text("")
    (project / "myproject" / "wsgi.py").write_text(WSGI)
    (project / "requirements.txt").write_text("# the app's own dependencies: none here\n")
    stand_ins.mkdir()
    for name in RECORDED:
        (stand_ins / name).write_text(STAND_IN.format(python=sys.executable))
        (stand_ins / name).chmod(0o755)
    log = base / "recorded.jsonl"
    log.touch()
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{stand_ins}{os.pathsep}{os.environ['PATH']}", DEPLOY_STEPS_LOG=str(log))
    results = []
    for index, line in enumerate(lines):
        command = rewrite(line, root, project)
        stray = outside_root(command, root, project)
        if stray:  # never run a step that would touch the real system
            results.append({"line": line, "ran": False, "error": f"absolute paths not rewritten: {stray}"})
            continue
        done = subprocess.run(["bash", "-c", command], cwd=REPO, env={**env, "DEPLOY_STEP": str(index)},
                              capture_output=True, text=True, timeout=600)
        results.append({"line": line, "ran": True, "returncode": done.returncode,
                        "error": done.stderr[-2000:]})
    recorded = [json.loads(entry) for entry in log.read_text().splitlines()]
    return {"root": root, "project": project, "lines": lines, "results": results, "recorded": recorded}


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    return walk(install_steps(), tmp_path_factory.mktemp("deploy"))


def unit_settings(path: Path) -> dict:
    settings = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings


def service(walked) -> dict:
    return unit_settings(walked["root"] / "etc/systemd/system/app.service")


def installed(walked, relative: str) -> Path:
    """A copied unit or site, its paths moved under the root (what the real one names on a host)."""
    path = walked["root"] / relative
    assert path.exists(), f"the steps did not install /{relative}"
    return path


def rewritten_copy(walked, relative: str, directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    copy = directory / Path(relative).name
    copy.write_text(rewrite(installed(walked, relative).read_text(), walked["root"]))
    return copy


def recorded(walked, program: str) -> list[dict]:
    return [entry for entry in walked["recorded"] if entry["argv"][0] == program]


def step_of(walked, pattern: str) -> int:
    """Index of the first step whose text matches ``pattern``."""
    for index, line in enumerate(walked["lines"]):
        if re.search(pattern, line):
            return index
    raise AssertionError(f"no install step matches {pattern!r}")


def test_steps_are_in_the_readme():
    lines = install_steps()
    assert any(line.startswith("useradd ") for line in lines)
    assert any("systemctl enable" in line for line in lines)


def test_every_step_runs(walked):
    failed = [result for result in walked["results"] if not result["ran"] or result["returncode"] != 0]
    assert not failed, "\n\n".join(f"{result['line']}\n  -> {result['error']}" for result in failed)


def test_useradd_makes_the_service_user_with_its_home(walked):
    [useradd] = recorded(walked, "useradd")
    argv, root = useradd["argv"], walked["root"]
    units = service(walked)
    assert argv[-1] == units["User"]
    assert "--system" in argv or "-r" in argv
    home = argv[argv.index("--home-dir") + 1] if "--home-dir" in argv else argv[argv.index("-d") + 1]
    assert home == rewrite(units["WorkingDirectory"], root) == str(root / "srv/app")
    if units.get("Group", units["User"]) == units["User"]:  # Group= is the user's own group
        assert "--user-group" in argv or "-U" in argv


def test_srv_app_belongs_to_the_service_user(walked):
    """/srv/app exists and, once filled, is handed to the service's user: a ``chown -R`` after
    the last step that writes there (``useradd -m`` alone would leave the venv and conf/ to root)."""
    root, units = walked["root"], service(walked)
    home = root / "srv/app"
    assert home.is_dir(), "/srv/app was not created"
    owner = f"{units['User']}:{units.get('Group', units['User'])}"
    chowns = [entry for entry in recorded(walked, "chown")
              if str(home) in entry["argv"] and entry["argv"][entry["argv"].index(str(home)) - 1] in (
                  owner, units["User"], f"{units['User']}:")]
    assert chowns, f"no step gives /srv/app to {owner} (useradd without -m does not create it)"
    recursive = [entry for entry in chowns if "-R" in entry["argv"] or "--recursive" in entry["argv"]]
    assert recursive, "chown of /srv/app without -R leaves its contents (the venv, conf/) to root"
    writers = [index for index, line in enumerate(walked["lines"])
               if "/srv/app" in line and not line.startswith(("useradd ", "chown "))]
    assert max(entry["step"] for entry in recursive) > max(writers), \
        "a step after the chown -R puts root-owned files in /srv/app"


def test_every_path_the_units_and_the_site_name_exists(walked):
    root, missing = walked["root"], []
    for relative in ("etc/systemd/system/app.service", "etc/systemd/system/app.socket",
                     "etc/nginx/sites-available/app"):
        text = rewrite(installed(walked, relative).read_text(), root)
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for path in re.findall(rf"{re.escape(str(root))}/[^\s;'\"]*", line):
                if not Path(path).exists():
                    missing.append(f"{relative}: {path.replace(str(root), '')}")
    assert not missing, "\n".join(missing)


def test_exec_start_working_directory_and_config(walked):
    root = walked["root"]
    units = {key: rewrite(value, root) for key, value in service(walked).items()}
    argv = shlex.split(units["ExecStart"])
    assert Path(argv[0]).is_file() and os.access(argv[0], os.X_OK), f"{argv[0]} is not an executable"
    assert Path(argv[0]).is_relative_to(root / "srv/app/.venv"), "ExecStart's gunicorn is not the venv's"
    assert "-c" in argv, "ExecStart names no configuration"
    assert Path(argv[argv.index("-c") + 1]).is_file(), f"{argv[argv.index('-c') + 1]} missing"
    assert Path(argv[argv.index("-c") + 1]).read_text() == (REPO / "conf/gunicorn.conf.py").read_text()
    assert Path(units["WorkingDirectory"]).is_dir()


def test_gunicorn_from_the_venv_loads_the_config_and_the_app(walked):
    """ExecStart with --check-config, from WorkingDirectory: the worker class is importable from
    the new venv, the configuration loads and so does the app."""
    root = walked["root"]
    units = {key: rewrite(value, root) for key, value in service(walked).items()}
    argv = shlex.split(units["ExecStart"])
    if not Path(argv[0]).exists():
        pytest.fail(f"{argv[0]} missing (see test_every_step_runs)")
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RUNTIME_DIRECTORY", "NOTIFY_SOCKET")}
    done = subprocess.run([argv[0], "--check-config", *argv[1:]], cwd=units["WorkingDirectory"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_systemctl_and_nginx_calls(walked):
    calls = [entry["argv"][1:] for entry in recorded(walked, "systemctl")]
    assert ["daemon-reload"] in calls
    enable = next((call for call in calls if call[0] == "enable"), None)
    assert enable is not None, calls
    assert "--now" in enable and {"app.socket", "app.service"} <= set(enable)
    copied = walked["root"] / "etc/systemd/system"
    assert all((copied / name).is_file() for name in ("app.socket", "app.service"))
    assert step_of(walked, r"/etc/systemd/system") < step_of(walked, "daemon-reload") \
        < step_of(walked, "systemctl enable")
    assert [entry["argv"][1:] for entry in recorded(walked, "nginx")] == [["-t"]]
    assert ["reload", "nginx"] in calls
    enabled = walked["root"] / "etc/nginx/sites-enabled/app"
    assert enabled.is_symlink() and enabled.resolve() == (walked["root"] / "etc/nginx/sites-available/app")
    assert enabled.read_text() == (REPO / "deploy/nginx-app.conf").read_text()


def test_socket_is_the_sites_upstream(walked):
    listen = unit_settings(installed(walked, "etc/systemd/system/app.socket"))["ListenStream"]
    site = installed(walked, "etc/nginx/sites-available/app").read_text()
    upstream = re.search(r"upstream\s+\w+\s*\{(.*?)\}", site, re.S)
    assert upstream, "the site has no upstream"
    servers = re.findall(r"^\s*server\s+(\S+?)[\s;]", upstream.group(1), re.M)
    assert servers, "the upstream has no server"
    expected = f"unix:{listen}" if listen.startswith("/") else listen
    assert servers == [expected], f"nginx proxies to {servers}, systemd listens on {listen}"


def test_static_location_serves_a_directory_the_steps_made(walked):
    site = rewrite(installed(walked, "etc/nginx/sites-available/app").read_text(), walked["root"])
    location = re.search(r"location\s+/static/\s*\{(.*?)\}", site, re.S)
    assert location, "the site has no /static/ location"
    body = location.group(1)
    alias = re.search(r"^\s*alias\s+(\S+);", body, re.M)
    root_dir = re.search(r"^\s*root\s+(\S+);", body, re.M)
    assert alias or root_dir, "the /static/ location names no directory"
    directory = Path(alias.group(1)) if alias else Path(root_dir.group(1)) / "static"
    assert directory.is_dir(), f"{directory} does not exist after the steps"
    assert directory.is_relative_to(walked["root"] / "srv/app")
    assert re.search(r"^\s*(expires\s+\S+|add_header\s+Cache-Control\s)", body, re.M), \
        "no cache headers on static files"
    assert "proxy_pass" not in body


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package: systemd; .ci/run installs it as root)")
def test_installed_units_pass_systemd_analyze_verify(walked, tmp_path):
    units = tmp_path / "units"
    for name in ("app.socket", "app.service"):
        rewritten_copy(walked, f"etc/systemd/system/{name}", units)
    result = subprocess.run(["systemd-analyze", "verify", str(units / "app.socket"), str(units / "app.service")],
                            capture_output=True, text=True, timeout=60, cwd=units)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def nginx_config(walked, directory: Path, ports: tuple[int, int] | None = None) -> list[str]:
    """The installed site, its paths under the root, in an nginx.conf of ``directory``; the nginx
    command line for it. With ``ports`` (http, https) it listens there on 127.0.0.1 instead."""
    trustme = pytest.importorskip("trustme", reason="trustme makes the test certificate (test extra)")
    cert = trustme.CA().issue_cert("example.com")
    cert.cert_chain_pems[0].write_to_path(directory / "cert.pem")
    cert.private_key_pem.write_to_path(directory / "key.pem")
    site = rewritten_copy(walked, "etc/nginx/sites-enabled/app", directory / "sites")
    text = site.read_text()
    text = text.replace("/etc/letsencrypt/live/example.com/fullchain.pem", str(directory / "cert.pem"))
    text = text.replace("/etc/letsencrypt/live/example.com/privkey.pem", str(directory / "key.pem"))
    if ports:
        text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line)
        text = text.replace("listen 80;", f"listen 127.0.0.1:{ports[0]};")
        text = text.replace("listen 443 ", f"listen 127.0.0.1:{ports[1]} ")
    site.write_text(text)
    return nginx_command(directory, site)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_installed_site_passes_nginx_t(walked, tmp_path):
    result = subprocess.run([*nginx_config(walked, tmp_path), "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_installed_site_serves_static_files_with_cache_headers(walked, tmp_path):
    static = walked["root"] / "srv/app/static"
    (static / "site.css").write_text("body { color: black }\n")
    https_port = free_port()
    proc = subprocess.Popen(nginx_config(walked, tmp_path, (free_port(), https_port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the certificate is not the point

        def get(path):
            raw = socket.create_connection(("127.0.0.1", https_port), timeout=10)
            with context.wrap_socket(raw, server_hostname="example.com") as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n".encode())
                return read_response(sock)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                return True
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                return False

        wait_until(listening, 15, what="nginx listening")
        found, missing = get("/static/site.css"), get("/static/absent.css")
    finally:
        proc.terminate()
        proc.wait(15)
    assert found.status == 200 and found.body == b"body { color: black }\n", found
    cache_control = ", ".join(value for name, value in found.headers if name.lower() == "cache-control")
    assert "max-age=604800" in cache_control and "public" in cache_control, found.headers
    assert missing.status == 404  # from nginx: the upstream (nothing listens on it here) is never asked
