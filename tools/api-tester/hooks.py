"""schemathesis hooks for tools/api-tester.sh.

Three things the OpenAPI document cannot carry:

- refresh needs a live refresh token, and each is good for one call (a
  replay revokes its family): every refresh case gets a fresh one, issued
  with the dev-mode demo login just before the call;
- the Session calls need a live access token (or, for revoke, a refresh
  token; for revoke-user the domain owner's; for introspect the client
  secret the script configured): each case gets a fresh login, and `end`
  names that login's own session (the document cannot know a valid id);
- Session.revoke answers success for a token that does not hold (RFC 7009:
  the answer must tell nothing about the token), so "invalid credentials
  accepted" is its contract there; only a request with no token at all is
  refused (401), and that check stands;
- issue and get_public_key answer an unknown domain with 400
  ERROR_NOT_FOUND (SpaceONE's INVALID_ARGUMENT; the document's 400 says so).
  A domain that does not exist is not a request the document called
  malformed, any more than a 404 for an id that does not exist, which
  schemathesis already accepts: that one failure is dropped, every other
  "schema-valid request rejected" stands.

The script passes the server and the demo login in the environment.
"""

import base64
import json
import os

import requests
import schemathesis
from schemathesis.openapi.checks import AuthScenario, IgnoredAuth, RejectedPositiveData

BASE_URL = os.environ["API_TESTER_URL"]
DEMO_LOGIN = {
    "domain_id": os.environ["API_TESTER_DOMAIN"],
    "user_id": os.environ["API_TESTER_USER"],
    "credentials": {"password": os.environ["API_TESTER_PASSWORD"]},
}
OWNER_LOGIN = {
    **DEMO_LOGIN,
    "user_id": os.environ["API_TESTER_OWNER"],
    "user_type": "DOMAIN_OWNER",
}
INTROSPECTION_BASIC = os.environ["API_TESTER_INTROSPECTION_BASIC"]


def _login(body):
    """A fresh token pair; a failed login stops the run loudly."""
    response = requests.post(f"{BASE_URL}/identity/v1/token/issue", json=body, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"demo login failed ({response.status_code}): {response.text}")
    return response.json()


def _sid(access_token):
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


# refresh_interval=None: no caching, a new token for every case.
@schemathesis.auth(refresh_interval=None).apply_to(path="/identity/v1/token/refresh")
class FreshRefreshToken:
    """A refresh token issued just for this case."""

    def get(self, case, context):
        # A failed login would turn every refresh case into a 401 and the
        # run into a test of nothing: _login stops loudly instead.
        return _login(DEMO_LOGIN)["refresh_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.auth(refresh_interval=None).apply_to(
    path_regex=r"^/tokengate/session/v1/(revoke|list|end|end-others)$"
)
class FreshSession:
    """A login just for this case: its access token (its refresh token for
    revoke), and for `end` its own session id."""

    def get(self, case, context):
        return _login(DEMO_LOGIN)

    def set(self, case, data, context):
        case.headers = case.headers or {}
        token = data["refresh_token" if case.path.endswith("/revoke") else "access_token"]
        case.headers["Authorization"] = f"Bearer {token}"
        # Only a well-formed id is swapped for a real one: a case built to
        # be invalid (no id, an empty one, another type) stays invalid.
        if case.path.endswith("/end") and isinstance(case.body, dict):
            given = case.body.get("session_id", case.body.get("sessionId"))
            if isinstance(given, str) and given:
                case.body.pop("sessionId", None)
                case.body["session_id"] = _sid(data["access_token"])


@schemathesis.auth(refresh_interval=None).apply_to(path="/tokengate/session/v1/revoke-user")
class FreshOwner:
    """The domain owner's access token, fresh for this case."""

    def get(self, case, context):
        return _login(OWNER_LOGIN)["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.auth().apply_to(path="/tokengate/session/v1/introspect")
class IntrospectionClient:
    """The introspection client the script configured (Basic)."""

    def get(self, case, context):
        return INTROSPECTION_BASIC

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = data


def _reason(response):
    try:
        return json.loads(response.content)["details"][0]["reason"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops only "schema-valid request rejected" for an unknown domain, and
    "invalid credentials accepted" by Session.revoke (RFC 7009)."""
    unknown_domain = (
        isinstance(failure, RejectedPositiveData)
        and response is not None
        and response.status_code == 400
        and _reason(response) == "ERROR_NOT_FOUND"
    )
    revoke_of_a_token_that_does_not_hold = (
        isinstance(failure, IgnoredAuth)
        # Any token it was given (invalid or generated); a request with
        # none at all must still be refused, and that check stands.
        and failure.scenario != AuthScenario.NO_AUTH
        and case.path == "/tokengate/session/v1/revoke"
    )
    return not (unknown_domain or revoke_of_a_token_that_does_not_hold)
