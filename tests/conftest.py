"""Shared fixtures: real servers on loopback, synthetic speech (espeak-ng), evaldata."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from earmark_eval import evaldata_dir, load_items, read_wav

ROOT = Path(__file__).resolve().parents[1]


def client_example(name: str):  # noqa: ANN201 - a module
    """Imports ``client_examples/<name>.py`` (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "client_examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str], data_dir: str | None = None,
                 file_size_limit: int | None = None) -> None:
        self.port = free_port()
        self.base = f"127.0.0.1:{self.port}"
        self.http = f"http://{self.base}"
        self.ws = f"ws://{self.base}"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"server-{self.port}.log"
        # A given data_dir outlives the server (restart tests); else a temporary one.
        self._data = None if data_dir else tempfile.TemporaryDirectory(prefix="earmark-data-")
        self.data_dir = Path(data_dir or self._data.name)  # type: ignore[union-attr]
        full_env = {**os.environ, "EARMARK_PORT": str(self.port), "EARMARK_CPU_THREADS": "2",
                    "EARMARK_DATA_DIR": str(self.data_dir), **env}
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "earmark", "serve"], env=full_env, stdout=self._log,
            stderr=subprocess.STDOUT, cwd=ROOT,
            preexec_fn=None if file_size_limit is None else _limit_file_size(file_size_limit),
        )

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.http}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            time.sleep(0.2)
        raise RuntimeError(f"server not ready: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
        if self._data is not None:
            self._data.cleanup()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash)."""
        self.proc.kill()
        self.proc.wait(20)
        self._log.close()


def _limit_file_size(limit: int):  # noqa: ANN202
    """A full disk, made real for one process: writes past ``limit`` bytes fail with EFBIG."""
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@contextlib.contextmanager
def running_server(data_dir: str | None = None, file_size_limit: int | None = None,
                   **settings: str) -> Iterator[Server]:
    server = Server({f"EARMARK_{k.upper()}": str(v) for k, v in settings.items()}, data_dir,
                    file_size_limit)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The default server (bundled model, no keys, loopback)."""
    with running_server() as s:
        yield s


# ---------------------------------------------------------------- synthetic speech
def espeak(text: str, voice: str = "en-us", speed: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng's ``voice`` (e.g. ``en-us+f3``, ``es``): int16 at 16 kHz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is missing: run `make setup` (it installs the Debian package)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(wav), text],
                       check=True, capture_output=True)
        data, rate, _ = read_wav(wav)
    import soxr

    audio = soxr.resample(data.astype(np.float32) / 32768, rate, 16000)
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


@pytest.fixture(scope="session")
def speak():
    """Returns ``speak(text) -> int16 numpy array at 16 kHz`` made with espeak-ng."""
    cache: dict[str, np.ndarray] = {}

    def _speak(text: str) -> np.ndarray:
        if text not in cache:
            cache[text] = espeak(text)
        return cache[text]

    return _speak


def silence_pcm(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), dtype=np.int16)


def spoken_lines(speak, lines: list[str], gap_s: float = 1.2) -> np.ndarray:  # noqa: ANN001
    """``lines`` spoken one after another with ``gap_s`` of silence after each."""
    parts = [silence_pcm(0.3)]
    for line in lines:
        parts += [speak(line), silence_pcm(gap_s)]
    return np.concatenate(parts)


# ---------------------------------------------------------------------- evaldata
def evaldata_items(kind: str):
    items = load_items(kind)
    if not items:
        pytest.skip(f"evaldata not found at {evaldata_dir()} (set EARMARK_EVALDATA)")
    return items



# ---------------------------------------------------------------------------- PostgreSQL
def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


class Postgres:
    """A throwaway PostgreSQL server on loopback (``initdb``/``pg_ctl`` in a temp dir), run
    as the ``postgres`` user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self, bindir: Path) -> None:
        import pwd

        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="earmark-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "earmark", "-E",
                  "UTF8", "--no-sync", "--no-instructions")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o",
                  f"-p {self.port} -h 127.0.0.1 -k {self.root} -F", "start")
        self._databases = 0

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True,
                       capture_output=True, timeout=120)

    def new_database(self) -> str:
        """A fresh, empty database's SQLAlchemy URL."""
        import psycopg

        self._databases += 1
        name = f"t{self._databases}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=earmark dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://earmark@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (the setup installs postgresql-15 from "
                    "Debian)")
    server = Postgres(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str | None:  # noqa: ANN001
    """None (the SQLite file in the data dir) or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()
