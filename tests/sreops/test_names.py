"""Data-derived names: refused when they could never be a name, safe as path components always."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sreops import names


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "a\x00b", "line\nbreak", "tab\there", "x" * 201, " padded", "evil\u202egnp.exe", "a\u2028b"],
)
def test_names_no_service_could_have_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(names.UnsafeName):
        names.check_name(bad, "service")


@pytest.mark.parametrize(
    "good", ["checkout", "api-gateway.eu-1", "Zahlungsdienst", "支付", "svc:9090/v1", "<!channel>"]
)
def test_ordinary_names_pass_unchanged(good: str) -> None:
    assert names.check_name(good) == good


@given(st.text(max_size=300))
def test_any_name_becomes_one_safe_component_that_stays_under_its_root(text: str) -> None:
    part = names.path_component(text)
    assert part not in ("", ".", "..") and "/" not in part and "\\" not in part and "\x00" not in part
    root = Path("/tmp/sreops-root")
    assert names.inside(root, part).parent == root.resolve()


def test_distinct_names_never_share_a_component() -> None:
    assert names.path_component("a/b") != names.path_component("a_b")
    assert names.path_component("..") != names.path_component(".")


def test_a_path_that_would_leave_its_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(names.UnsafeName):
        names.inside(tmp_path, "..", "x")
    assert names.inside(tmp_path, "a", "b") == (tmp_path / "a" / "b").resolve()
