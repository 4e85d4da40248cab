"""The profile registry: every system declared once, its suites and faults where it says they are."""

from __future__ import annotations

import pytest

from conformance.profiles import registry as profiles
from conformance.runner.fault_coverage import collect_check_ids
from tests.conftest import SUITES


def test_names_and_aliases_resolve_to_one_profile() -> None:
    names = [n for p in profiles.PROFILES for n in p.names]
    assert len(names) == len(set(names)), "a name or alias is claimed twice"
    for profile in profiles.PROFILES:
        assert all(profiles.get(name) is profile for name in profile.names)
    assert profiles.DEFAULT is min(profiles.PROFILES, key=lambda p: p.order)
    with pytest.raises(profiles.UnknownProfile, match="choose one of " + ", ".join(profiles.names())):
        profiles.get("no-such-system")


def test_every_module_with_a_profile_is_found() -> None:
    """The registry discovers profile modules: adding a system needs no list to be edited."""
    import pkgutil

    import conformance.profiles

    modules = [m.name for m in pkgutil.iter_modules(conformance.profiles.__path__)]
    assert len(profiles.PROFILES) == len([m for m in modules if m not in ("base", "registry", "udap_community")])


def test_every_suite_folder_belongs_to_a_profile_and_exists() -> None:
    folders = {p.parent.name for p in SUITES.glob("*/test_*.py")}
    claimed = {suite for profile in profiles.PROFILES for suite in profile.suites}
    assert folders == claimed, f"suite folders no profile runs: {folders - claimed}; missing: {claimed - folders}"


@pytest.mark.parametrize("profile", profiles.PROFILES, ids=lambda p: p.name)
def test_a_profile_runs_only_checks_from_its_own_suites(profile: profiles.Profile) -> None:
    ids = collect_check_ids(SUITES, profile.name)
    assert ids, f"profile {profile.name} collects no check"
    areas = {check.split("/", 1)[0] for check in ids}
    assert areas <= set(profile.suites), areas - set(profile.suites)


@pytest.mark.parametrize("profile", profiles.PROFILES, ids=lambda p: p.name)
def test_every_profile_has_faults_and_a_server_layout(profile: profiles.Profile) -> None:
    assert profile.faults, f"profile {profile.name} has no fault in faults.toml"
    settings = profile.server_settings()
    assert settings.profile == profile.name
    assert settings.fhir_path.startswith("/") and settings.token_path.startswith("/")
