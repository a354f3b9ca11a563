"""A second Docker engine on this machine, beside the first: ``dockerd`` with its own everything.

Its own data root, exec root, pid file, unix socket and configuration file (the host's
/etc/docker/daemon.json sets the first engine's data root), its own bridge interface and no
iptables rules, so it cannot clash with the first engine's network. Not ``--bridge=none``: a
``dockerd`` started so deletes the host's ``docker0`` (moby's removeDefaultBridgeInterface), and the
first engine can then start no container on its default bridge. The storage driver is the first engine's (a
driver that works here). The sandbox image is loaded into it from the first engine with ``docker
save | docker load``, so nothing is pulled. One per test session (starting it and loading the
image take seconds); :meth:`SecondEngine.stop` and :meth:`SecondEngine.start` let a test take it
away and bring it back. It needs root and the ``dockerd`` binary: without them the tests that use
it skip locally, and fail under ``CI=true``, where both are expected.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NoReturn

import docker
import pytest

from tests.served_worker import free_port

__all__ = ["SecondEngine", "second_engine"]

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


class SecondEngine:
    """A ``dockerd`` on ``url``; its state lives under ``root`` and goes with it at the end."""

    def __init__(self, root: Path, storage_driver: str, bridge: str) -> None:
        self.root = root
        self.bridge = bridge
        self.socket = root / "docker.sock"
        self.url = f"unix://{self.socket}"
        # The same engine on a loopback port, TLS both ways, as an engine on another host is reached.
        self.tls_url = f"tcp://127.0.0.1:{free_port()}"
        self.tls = _make_certificates(root / "tls")
        self._config = root / "daemon.json"
        self._config.write_text(f'{{"storage-driver": "{storage_driver}"}}')
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self._process = subprocess.Popen(
            [
                "dockerd",
                "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "dockerd.pid"),
                "--host", self.url,
                "--host", self.tls_url,
                "--tlsverify",
                "--tlscacert", self.tls["ca"],
                "--tlscert", str(self.root / "tls" / "server-cert.pem"),
                "--tlskey", str(self.root / "tls" / "server-key.pem"),
                "--config-file", str(self._config),
                f"--bridge={self.bridge}",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our signals only: never the test runner's process group
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited {self._process.returncode}: {self.log_tail()}")
            if self.socket.exists():
                try:
                    with self.client() as client:
                        client.ping()
                    return
                except docker.errors.DockerException:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not answer within {_START_TIMEOUT}s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop the engine (SIGTERM, then SIGKILL): its containers stop with it."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @contextmanager
    def client(self) -> Iterator[docker.DockerClient]:
        client = docker.DockerClient(base_url=self.url)
        try:
            yield client
        finally:
            client.close()

    def load_image(self, source: docker.DockerClient, tag: str) -> None:
        """Copy ``tag`` from ``source`` (the first engine): ``docker save | docker -H ... load``, streamed."""
        chunks = source.api.get_image(tag)
        with self.client() as client:
            try:
                list(client.api.load_image(chunks, quiet=True))
            except docker.errors.DockerException as e:
                raise RuntimeError(f"loading {tag} into the second engine failed: {e}") from e
            if not client.images.list(name=tag):
                raise RuntimeError(f"{tag} is not on the second engine after loading it")

    def log_tail(self) -> str:
        log = self.root / "dockerd.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"

    def remove_everything(self) -> None:
        """Every container and volume on it (between tests; the image stays)."""
        with self.client() as client:
            for container in client.api.containers(all=True):
                client.api.remove_container(container["Id"], force=True, v=True)
            for volume in client.api.volumes().get("Volumes") or []:
                client.api.remove_volume(volume["Name"], force=True)


def _make_certificates(directory: Path) -> dict[str, str]:
    """A CA, the engine's certificate for 127.0.0.1 and a client certificate; the client's paths."""
    directory.mkdir(exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, capture_output=True, check=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", "ca-key.pem", "-out", "ca.pem")  # fmt: skip
    for name, usage in (("server", "serverAuth\nsubjectAltName = IP:127.0.0.1"), ("client", "clientAuth")):
        (directory / f"{name}.ext").write_text(f"extendedKeyUsage = {usage}\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")  # fmt: skip
        openssl("x509", "-req", "-days", "2", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", f"{name}-cert.pem", "-extfile", f"{name}.ext")  # fmt: skip
    return {
        "ca": str(directory / "ca.pem"),
        "cert": str(directory / "client-cert.pem"),
        "key": str(directory / "client-key.pem"),
    }


def _started(root: Path, driver: str, bridge: str) -> SecondEngine:
    """The engine on the first engine's storage driver, else on ``vfs`` (slow, but works anywhere)."""
    engine = SecondEngine(root, driver, bridge)
    try:
        engine.start()
    except RuntimeError:
        if driver == "vfs":
            raise
        engine.stop()
        engine = SecondEngine(root, "vfs", bridge)
        engine.start()
    return engine


@contextmanager
def _own_bridge() -> Iterator[str]:
    """A bridge interface of the second engine's own, on a /24 of 10.213.0.0/16, deleted after."""
    name = f"aw-e2-{secrets.token_hex(3)}"  # interface names are at most 15 bytes
    subnet = f"10.213.{secrets.randbelow(256)}.1/24"
    for command in (["add", name, "type", "bridge"], ["set", name, "up"]):
        subprocess.run(["ip", "link", *command], capture_output=True, check=True)
    try:
        subprocess.run(["ip", "addr", "add", subnet, "dev", name], capture_output=True, check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the second Docker engine cannot run here, and CI must run these tests: {reason}")
    pytest.skip(f"no second Docker engine: {reason}")


@pytest.fixture(scope="session")
def second_engine(docker_client: docker.DockerClient, sandbox_image: str) -> Iterator[SecondEngine]:
    if os.geteuid() != 0:
        _unavailable("dockerd needs root")
    if shutil.which("dockerd") is None:
        _unavailable("no dockerd binary")
    # Short: the unix socket's path must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="aw-engine2-", dir="/tmp"))
    engine: SecondEngine | None = None
    with ExitStack() as stack:  # the bridge goes last, after the engine that uses it
        try:
            try:
                bridge = stack.enter_context(_own_bridge())
                engine = _started(root, docker_client.info().get("Driver") or "overlay2", bridge)
                engine.load_image(docker_client, sandbox_image)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                _unavailable(str(e))
            yield engine
            if engine.running:
                engine.remove_everything()
        finally:
            if engine is not None:
                engine.stop()
            for mounted in ("exec", "data"):
                subprocess.run(["umount", "-R", str(root / mounted)], capture_output=True, check=False)
            shutil.rmtree(root, ignore_errors=True)
