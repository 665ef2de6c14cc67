"""Each platform's leak reports through HTTP against a real ``serve``, with locally generated keys served
as each platform's key document: accepted when signed, refused as the platform expects otherwise, and
one credential reported by two platforms is one leak with two sightings and one mail."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from tests.support.github import Signer
from tests.support.origins import DEPS_DEV, GITHUB, GITLAB, PLATFORMS, Deployment, Platform


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with Deployment(tmp_path_factory.mktemp("origins")) as running:
        yield running


def other(platform: Platform) -> Platform:
    """Another platform, whose headers and keys are wrong on ``platform``'s route."""
    return GITLAB if platform is not GITLAB else GITHUB


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.name)
def test_a_signed_report_is_acted_on_and_answered_as_the_platform_expects(
    deployment: Deployment, platform: Platform
) -> None:
    key = deployment.issue()
    assert deployment.whoami(key.api_key) == 200
    body = platform.body(key.api_key)
    first = deployment.report(platform, body)
    if platform is GITLAB:  # any 2xx acknowledges; GitLab reads nothing more
        assert (first.status_code, first.content) == (204, b"")
    else:  # GitHub's feedback, which deps.dev is given too
        assert first.status_code == 200
        assert first.json() == [
            {
                "token_hash": hashlib.sha256(key.api_key.encode()).hexdigest(),
                "token_type": "soundpiece_api_key",
                "label": "true_positive",
            }
        ]
    assert deployment.whoami(key.api_key) == 401
    assert deployment.sightings(key.key_id) == [(platform.name, platform.url)]
    (mail,) = deployment.mails(key.key_id)
    assert json.loads(mail["payload"])["origin"] == platform.name and key.api_key not in mail["payload"]
    # A replay (or a retry: the protocols cannot tell them apart) is answered alike and changes nothing.
    again = deployment.report(platform, body)
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert deployment.sightings(key.key_id) == [(platform.name, platform.url)]
    assert len(deployment.mails(key.key_id)) == 1


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.name)
def test_reports_not_signed_by_the_platform_are_refused_and_change_nothing(
    deployment: Deployment, platform: Platform
) -> None:
    key = deployment.issue()
    body = platform.body(key.api_key)
    own = deployment.signers[platform.name]
    stranger = deployment.signers[other(platform).name]  # a real key, of another platform
    cases = {
        "wrong key": platform.headers(Signer(), body, key_id=own.key_id),
        "wrong header set": other(platform).headers(own, body),
        "stale key id": platform.headers(stranger, body),
        "retired key id": platform.headers(own, body, key_id="0" * 64),
        "body altered after signing": platform.headers(
            own, body.replace(b"soundpiece_api_key", b"soundpiece_api_kex")
        ),
        "no headers": {"Content-Type": "application/json"},
    }
    for case, headers in cases.items():
        response = deployment.http.post(
            f"{deployment.server.url}{platform.route}",
            content=body,
            headers={**headers, **deployment.client()},
        )
        assert response.status_code == 401, case
        assert response.json() == {"detail": f"Invalid {platform.shown} signature"}, case
    assert deployment.whoami(key.api_key) == 200
    assert deployment.sightings(key.key_id) == [] and deployment.mails(key.key_id) == []


@pytest.mark.parametrize(("platform", "status"), [(GITHUB, 400), (DEPS_DEV, 400), (GITLAB, 202)], ids=str)
def test_a_signed_body_that_is_not_an_array_is_answered_so_that_a_retry_is_not_wasted(
    deployment: Deployment, platform: Platform, status: int
) -> None:
    """GitLab retries every answer of 400 or more, and this body would fail again each time: 202."""
    response = deployment.report(platform, b'{"token": "x"}')
    assert response.status_code == status
    assert "not a JSON array" in response.json()["detail"]


def test_one_credential_reported_by_two_platforms_is_one_leak_two_sightings_and_one_mail(
    deployment: Deployment,
) -> None:
    key = deployment.issue()
    assert deployment.report(GITHUB, GITHUB.body(key.api_key)).json()[0]["label"] == "true_positive"
    assert deployment.report(GITLAB, GITLAB.body(key.signing_secret)).status_code == 204
    assert deployment.sightings(key.key_id) == [("github", GITHUB.url), ("gitlab", GITLAB.url)]
    (mail,) = deployment.mails(key.key_id)
    assert json.loads(mail["payload"])["origin"] == "github"  # the first report's
    (github, gitlab) = [leak for leak in deployment.cli("leaks", "list") if leak["key_id"] == key.key_id][
        ::-1
    ]
    assert (github["action"], gitlab["action"]) == ("revoked", "already_revoked")
    # The same place reported by a third platform is a sighting of its own, and no more mail.
    assert deployment.report(DEPS_DEV, DEPS_DEV.body(key.api_key, url=GITHUB.url)).status_code == 200
    assert [origin for origin, _url in deployment.sightings(key.key_id)] == ["github", "gitlab", "deps.dev"]
    assert len(deployment.mails(key.key_id)) == 1


def test_each_platform_fetched_its_own_key_document(deployment: Deployment) -> None:
    for platform in PLATFORMS:
        deployment.report(platform, b"[]")
        assert deployment.key_servers[platform.name].requests >= 1, platform.name
