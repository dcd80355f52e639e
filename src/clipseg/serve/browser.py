"""A headless Chromium (the system's, Debian's ``chromium`` + ``chromium-driver``) under Selenium,
for the browser test and the docs' screenshot (``bench/serve_screenshot.py``).

No browser is downloaded: without the system's binaries ``chromium()`` raises ``FileNotFoundError``
saying which package to install. Every host but 127.0.0.1 resolves to nothing, so what the page
shows is what it shows offline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")


def _find(candidates: tuple[str, ...]) -> str | None:
    return next((found for c in candidates if (found := shutil.which(c))), None)


def missing() -> str | None:
    """Why no browser can start (which package to install), or None when both binaries are here."""
    absent = [
        pkg for pkg, names in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER)) if not _find(names)
    ]
    if not absent:
        return None
    return f"no {' / '.join(absent)} on this machine: apt-get install chromium chromium-driver"


def chromium(*, width: int = 1280, height: int = 1000, downloads: Path | None = None):
    """A headless Chromium ``selenium.webdriver.Chrome``, offline but for 127.0.0.1; ``quit()`` it after use.

    ``downloads``: the folder clicked downloads go to (no prompt).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    reason = missing()
    if reason:
        raise FileNotFoundError(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = _find(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    if downloads is not None:
        prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        options.add_experimental_option("prefs", prefs)
    return webdriver.Chrome(service=Service(_find(CHROMEDRIVER)), options=options)
