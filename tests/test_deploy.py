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

from bot.ops.settings import PROJECT_ROOT, Settings

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


HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (./test.sh installs it with root or sudo)")
def test_the_deploy_balancer_passes_only_patients_paths_and_rest_on_its_loopback_port(tmp_path):
    """deploy/haproxy.cfg itself, run by haproxy (its ports moved to free ones, two stand-in
    instances that answer every path): the public port passes web chat and the phone webhooks and
    answers 404 to the REST channel, Rasa's banner and anything else; the REST port passes only REST."""
    import http.server
    import threading
    import time
    import urllib.error
    import urllib.request

    from bot.ops.harness import free_port

    class Instance(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = f"instance saw {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    instances = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Instance) for _ in range(2)]
    for server in instances:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    public, rest = free_port(), free_port()
    config = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    config = re.sub(r"^\s*(user|group|stats socket) .*$", "", config, flags=re.M)
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{public}").replace("127.0.0.1:8001", f"127.0.0.1:{rest}")
    config = config.replace("127.0.0.1:5011", f"127.0.0.1:{instances[0].server_port}")
    config = config.replace("127.0.0.1:5012", f"127.0.0.1:{instances[1].server_port}")
    (tmp_path / "haproxy.cfg").write_text(config, encoding="utf-8")
    balancer = subprocess.Popen([HAPROXY, "-db", "-f", str(tmp_path / "haproxy.cfg")], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def fetch(port: int, path: str, method: str = "GET"):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                         data=b"{}" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except (urllib.error.URLError, ConnectionError):
            return 0, ""

    try:
        deadline = time.monotonic() + 20
        while fetch(public, "/socket.io/?EIO=4")[0] != 200:
            assert balancer.poll() is None and time.monotonic() < deadline, balancer.stdout.read().decode()
            time.sleep(0.2)
        for path in ("/socket.io/?EIO=4&transport=polling", "/webhooks/telegram/webhook", "/webhooks/twilio/webhook"):
            assert fetch(public, path, "POST")[0] == 200, path
        for path, method in (("/webhooks/rest/webhook", "POST"), ("/webhooks/rest/", "GET"), ("/", "GET"),
                             ("/conversations/x/tracker", "GET"), ("/model/parse", "POST"), ("/webhooks/socketio/", "GET"),
                             ("/webhooks/telegram/webhook/../../rest/webhook", "POST")):
            status, body = fetch(public, path, method)
            assert status == 404 and "instance saw" not in body and "Rasa" not in body, (path, status, body)
        assert fetch(rest, "/webhooks/rest/webhook", "POST") == (200, "instance saw /webhooks/rest/webhook")
        assert fetch(rest, "/socket.io/?EIO=4")[0] == 404 and fetch(rest, "/")[0] == 404
    finally:
        balancer.terminate()
        balancer.wait(10)
        for server in instances:
            server.shutdown()


def test_each_instance_env_matches_a_server_of_the_balancer():
    config = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    servers = set(re.findall(r"server (rasa-\d+) 127\.0\.0\.1:(\d+) check\n", config))
    instances = sorted(DEPLOY.glob("instance-*.env.example"))
    assert len(instances) == len(servers) == 2
    for example in instances:
        number = re.search(r"instance-(\d+)", example.name).group(1)
        assert (f"rasa-{number}", env_file(example)["RASA_PORT"]) in servers
    assert len({env_file(e)["ACTION_SERVER_PORT"] for e in instances}) == len(instances)
