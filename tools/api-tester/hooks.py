"""schemathesis hooks for tools/api-tester.sh.

Two things the OpenAPI document cannot carry:

- refresh needs a live refresh token, and each is good for one call (a
  replay revokes its family): every refresh case gets a fresh one, issued
  with the dev-mode demo login just before the call;
- issue and get_public_key answer an unknown domain with 400
  ERROR_NOT_FOUND (SpaceONE's INVALID_ARGUMENT; the document's 400 says so).
  A domain that does not exist is not a request the document called
  malformed, any more than a 404 for an id that does not exist, which
  schemathesis already accepts: that one failure is dropped, every other
  "schema-valid request rejected" stands.

The script passes the server and the demo login in the environment.
"""

import json
import os

import requests
import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

BASE_URL = os.environ["API_TESTER_URL"]
DEMO_LOGIN = {
    "domain_id": os.environ["API_TESTER_DOMAIN"],
    "user_id": os.environ["API_TESTER_USER"],
    "credentials": {"password": os.environ["API_TESTER_PASSWORD"]},
}


# refresh_interval=None: no caching, a new token for every case.
@schemathesis.auth(refresh_interval=None).apply_to(path="/identity/v1/token/refresh")
class FreshRefreshToken:
    """A refresh token issued just for this case."""

    def get(self, case, context):
        response = requests.post(
            f"{BASE_URL}/identity/v1/token/issue", json=DEMO_LOGIN, timeout=30
        )
        # A failed login would turn every refresh case into a 401 and the
        # run into a test of nothing: stop loudly instead.
        if response.status_code != 200:
            raise RuntimeError(
                f"demo login failed ({response.status_code}): {response.text}"
            )
        return response.json()["refresh_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _reason(response):
    try:
        return json.loads(response.content)["details"][0]["reason"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops only "schema-valid request rejected" for an unknown domain."""
    unknown_domain = (
        isinstance(failure, RejectedPositiveData)
        and response is not None
        and response.status_code == 400
        and _reason(response) == "ERROR_NOT_FOUND"
    )
    return not unknown_domain
