"""Draw the README's screenshot of the web app: ``docs/serve.png``.

Starts ``create_app`` with the shipped shapes-tiny on a free port of 127.0.0.1, opens the page in the
system's headless Chromium (``clipseg.serve.browser``, the browser of the browser test), uploads the
bundled example, types two prompts, sets a threshold, runs, and saves a screenshot of the page.

    python bench/serve_screenshot.py [--out docs/serve.png]
    python bench/serve_screenshot.py --busy --out /tmp/busy.png   # a server with a full queue: the page's message
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "src" / "clipseg" / "assets" / "example.png"
PROMPTS = ["red square", "blue circle"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serve.png")
    parser.add_argument("--busy", action="store_true", help="a queue of 0: every run is refused as busy")
    args = parser.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from clipseg import load_model
    from clipseg.serve import BatchLimits, create_app, running
    from clipseg.serve.browser import chromium

    app = create_app(
        load_model("shapes-tiny", device="cpu"), batching=BatchLimits(max_queue=0) if args.busy else None
    )
    driver = chromium(width=1280, height=1500)
    try:
        with running(app) as url:
            wait = WebDriverWait(driver, 120)
            driver.get(f"{url}/")
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#image input[type=file]")).send_keys(
                str(EXAMPLE)
            )
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#image img"))
            driver.find_element(By.CSS_SELECTOR, "#prompts textarea").send_keys("\n".join(PROMPTS))
            number = driver.find_element(
                By.CSS_SELECTOR, "input[type=number][aria-label^='number input for threshold']"
            )
            number.send_keys(Keys.CONTROL, "a")
            number.send_keys("0.5", Keys.TAB)
            driver.find_element(By.CSS_SELECTOR, "#run").click()
            if args.busy:  # Gradio's error toast, with the server's message
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".toast-body"))
            else:
                wait.until(
                    lambda d: len(d.find_elements(By.CSS_SELECTOR, "#downloads a[download]")) == len(PROMPTS)
                )
            driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
    print(args.out)


if __name__ == "__main__":
    main()
