"""The HTML report looked at the way a person would: in headless Chromium (integration)."""

import pytest

pytestmark = pytest.mark.integration


def test_report_renders_with_its_images(evaluated, browser, tmp_path):
    page = evaluated / "evaluation.html"
    browser.get(page.as_uri())
    images = browser.execute_script(
        "return [...document.images].map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    assert len(images) >= 6  # confusion, ROC, PR, calibration, 2 x importance, residuals
    broken = [alt for alt, complete, width in images if not (complete and width > 0)]
    assert broken == []
    text = browser.find_element("tag name", "body").text
    assert "Quality gate:" in text
    assert "oracle ceiling" in text
    assert "Fit diagnosis" in text
    # no request leaves the page: everything is inline
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)"
    )
    assert [r for r in resources if not r.startswith("data:")] == []
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
