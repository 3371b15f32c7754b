"""deploy/: the cluster topology for a clinic's own servers, checked with what runs here.

haproxy.cfg is the launcher's own configuration (``python -m bot haproxy-config``) and haproxy
accepts it; the systemd units pass ``systemd-analyze verify`` with their paths pointed at this
checkout; the example environment files name only settings the project knows; each instance's
ports match a server line of the balancer. (Not run here: systemd itself, which is not PID 1 in
this sandbox, and a multi-machine install.)
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
HAPROXY_ARGS = ["--instance", "127.0.0.1:5011", "--instance", "127.0.0.1:5012", "--port", "8000",
                "--stats-socket", "/run/haproxy/clinic-assistant.sock", "--stats-group", "clinic-assistant",
                "--user", "haproxy"]


def env_file(path: Path) -> dict:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_the_deploy_haproxy_cfg_is_what_the_launcher_generates():
    generated = subprocess.run([sys.executable, "-m", "bot", "haproxy-config", *HAPROXY_ARGS], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8") == generated, \
        "deploy/haproxy.cfg is stale: regenerate it with python -m bot haproxy-config (see deploy/README.md)"
    assert "cookie CLINIC_INSTANCE insert" in generated and "retry-on conn-failure" in generated


@pytest.mark.skipif(shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists(),
                    reason="haproxy is not installed (./test.sh installs it with root or sudo)")
def test_haproxy_accepts_the_deploy_configuration(tmp_path):
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    config = tmp_path / "haproxy.cfg"
    # the clinic-assistant group does not exist in this sandbox
    config.write_text((DEPLOY / "haproxy.cfg").read_text(encoding="utf-8").replace("group clinic-assistant", "group root"),
                      encoding="utf-8")
    result = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} >= {"clinic-assistant.target", "clinic-setup.service", "clinic-rasa@.service",
                                       "clinic-actions@.service", "clinic-web.service"}
    for unit in units:
        text = unit.read_text(encoding="utf-8").replace("/opt/clinic-assistant", str(PROJECT_ROOT))
        text = text.replace("/etc/clinic-assistant", str(etc))
        # the clinic-assistant system user does not exist in this sandbox
        text = re.sub(r"^(User|Group)=clinic-assistant$", r"\1=root", text, flags=re.M)
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    names = [tmp_path / "clinic-assistant.target", tmp_path / "clinic-setup.service", tmp_path / "clinic-web.service",
             tmp_path / "clinic-rasa@1.service", tmp_path / "clinic-actions@1.service"]
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, names)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "clinic" in line and "Unit is bound to inactive unit" not in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_example_environment_names_only_known_settings():
    known = {field.field_info.extra.get("env") for field in Settings.__fields__.values()}
    known |= {"ACTION_SERVER_PORT", "RASA_PORT"}
    for example in DEPLOY.glob("*.env.example"):
        unknown = set(env_file(example)) - known
        assert not unknown, f"{example.name} sets variables the project does not read: {sorted(unknown)}"


def test_each_instance_env_matches_a_server_of_the_balancer():
    config = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    servers = set(re.findall(r"server (rasa-\d+) 127\.0\.0\.1:(\d+) check\n", config))
    instances = sorted(DEPLOY.glob("instance-*.env.example"))
    assert len(instances) == len(servers) == 2
    for example in instances:
        number = re.search(r"instance-(\d+)", example.name).group(1)
        assert (f"rasa-{number}", env_file(example)["RASA_PORT"]) in servers
    assert len({env_file(e)["ACTION_SERVER_PORT"] for e in instances}) == len(instances)
