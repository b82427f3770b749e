"""The LaunchAgent that starts `convassist-agent run` at login and logs to a file."""

from __future__ import annotations

import plistlib
import subprocess
import sys
from pathlib import Path

LABEL = "com.convassist.agent"


def plist_path() -> Path:
    return Path("~/Library/LaunchAgents").expanduser() / f"{LABEL}.plist"


def plist(executable: str, log_dir: Path, interval: int) -> dict:
    return {"Label": LABEL, "ProgramArguments": [executable, "-m", "convassist_agent", "run",
                                                 "--interval", str(interval)],
            "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False},
            "StandardOutPath": str(log_dir / "agent.log"), "StandardErrorPath": str(log_dir / "agent.log"),
            "ProcessType": "Background"}


def install(log_dir: Path, interval: int = 300) -> Path:
    path = plist_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        plistlib.dump(plist(sys.executable, log_dir, interval), handle)
    if sys.platform == "darwin":
        subprocess.run(["launchctl", "unload", str(path)], capture_output=True)
        subprocess.run(["launchctl", "load", "-w", str(path)], check=True)
    return path


def uninstall() -> bool:
    path = plist_path()
    if not path.exists():
        return False
    if sys.platform == "darwin":
        subprocess.run(["launchctl", "unload", "-w", str(path)], capture_output=True)
    path.unlink()
    return True
