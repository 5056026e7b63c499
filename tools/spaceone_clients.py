"""Drives a running tokengate (dev mode) with SpaceONE 1.10's own Python
clients, as tools/spaceone-clients.sh sets them up: spaceone-core's pygrpc
client (which finds services through reflection v1alpha), spaceone-api's
generated stubs, the token check a stock SpaceONE 1.10 service runs on every
call (AuthenticationGRPCHandler: Domain.get_public_key, then JWTAuthenticator),
and spacectl.

Prints one `ok   <name>` line per check and exits non-zero on the first
failure. The dev password comes in SPACEONE_CLIENTS_PASSWORD (not argv, which
other users of the machine can read).
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings

# google-api-core (pulled in by spaceone-core) warns about the Python version
# on import: noise in a check's output.
warnings.filterwarnings("ignore")

import grpc  # noqa: E402
from jose import jwt  # noqa: E402
from spaceone.api.identity.v1 import domain_pb2, domain_pb2_grpc  # noqa: E402
from spaceone.core import config, pygrpc  # noqa: E402
from spaceone.core.auth.jwt import JWTAuthenticator  # noqa: E402
from spaceone.core.error import ERROR_BASE  # noqa: E402
from spaceone.core.service import (  # noqa: E402
    BaseService,
    authentication_handler,
    transaction,
)

DOMAIN = "domain-dev"
USER = "admin@example.com"


class CheckFailed(Exception):
    pass


def expect(condition, what):
    if not condition:
        raise CheckFailed(what)


PASSED = []


def check(name):
    """Runs the decorated function as the check `name` at once."""

    def run(fn):
        try:
            fn()
        except Exception as e:  # any failure ends the run, with its reason
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            sys.exit(1)
        print(f"ok   {name}", flush=True)
        PASSED.append(name)
        return fn

    return run


def raises(fn, error_type=ERROR_BASE):
    try:
        fn()
    except error_type as e:
        return e
    raise CheckFailed(f"no {error_type.__name__} raised")


def configure_spaceone(endpoint):
    """The global configuration of a SpaceONE 1.10 service whose calls are
    authenticated by the identity service at `endpoint` (here tokengate), as
    its global_conf.py would set it."""
    # The service logs each refused call ("(Error) => …") through Python's
    # last-resort handler: the check reports failures itself.
    logging.getLogger("spaceone").addHandler(logging.NullHandler())
    config.init_conf(package="spaceone.tokengate_check")
    config.set_global(
        CACHES={
            "local": {
                "backend": "spaceone.core.cache.local_cache.LocalCache",
                "max_size": 128,
                "ttl": 300,
            }
        },
        HANDLERS={
            "authentication": [
                {
                    "backend": "spaceone.core.handler.authentication_handler."
                    "AuthenticationGRPCHandler",
                    "uri": f"grpc://{endpoint}/v1/Domain/get_public_key",
                }
            ],
            "authorization": [],
            "mutation": [],
            "event": [],
        },
        SET_LOGGING=False,
    )


@authentication_handler
class WhoAmIService(BaseService):
    """A service as SpaceONE 1.10 writes them: its calls pass the configured
    authentication handler first, which leaves the token's claims in the
    transaction's metadata."""

    @transaction
    def whoami(self, params):
        return {
            "domain_id": self.transaction.get_meta("domain_id"),
            "user_id": self.transaction.get_meta("user_id"),
            "token_type": self.transaction.get_meta("token_type"),
        }


def spacectl(binary, home, *args):
    """Runs spacectl with its configuration under `home`; returns stdout."""
    env = dict(os.environ, HOME=home, PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [binary, *args], env=env, capture_output=True, text=True, timeout=120
    )
    # spacectl prints its errors ("ERROR: …") and exits 0 on some of them.
    if done.returncode != 0 or done.stdout.startswith("ERROR") or "ERROR:" in done.stderr:
        raise CheckFailed(
            f"spacectl {' '.join(args[:3])}: exit {done.returncode}: "
            f"{done.stdout.strip()} {done.stderr.strip()}"
        )
    return done.stdout


def spacectl_checks(binary, home, endpoint, login, state):
    """spacectl 1.10 logs in, refreshes and fetches the public key."""
    ctl = lambda *a: spacectl(binary, home, *a)  # noqa: E731

    @check("spacectl: config init, identity endpoint set")
    def _():
        ctl("config", "init", "-e", "tokengate")
        ctl("config", "endpoint", "add", "identity", f"grpc://{endpoint}")

    @check("spacectl: api-resources lists identity Token and Domain")
    def _():
        out = ctl("api-resources")
        expect("issue, refresh" in out and "get_public_key" in out, out)

    @check("spacectl: exec issue identity.Token (login)")
    def _():
        answer = json.loads(
            ctl("exec", "issue", "identity.Token", "-j", json.dumps(login), "-o", "json")
        )
        expect(answer.get("access_token") and answer.get("refresh_token"), f"{answer}")
        state["spacectl"] = answer

    @check("spacectl: exec refresh identity.Token (api_key = refresh token)")
    def _():
        ctl("config", "set", "api_key", state["spacectl"]["refresh_token"])
        answer = json.loads(ctl("exec", "refresh", "identity.Token", "-o", "json"))
        expect(answer.get("access_token"), f"{answer}")
        expect(
            answer.get("refresh_token") not in (None, state["spacectl"]["refresh_token"]),
            f"{answer}",
        )

    @check("spacectl: exec get_public_key identity.Domain")
    def _():
        answer = json.loads(
            ctl("exec", "get_public_key", "identity.Domain", "-p",
                f"domain_id={DOMAIN}", "-o", "json")
        )
        expect(json.loads(answer.get("public_key", "{}")).get("kty") == "RSA", f"{answer}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="HOST:PORT of tokengate")
    parser.add_argument("--spacectl", help="spacectl to run as well, if installed")
    args = parser.parse_args()
    password = os.environ.get("SPACEONE_CLIENTS_PASSWORD", "")
    if not password:
        sys.exit("SPACEONE_CLIENTS_PASSWORD is not set")
    endpoint = args.endpoint
    login = {"domain_id": DOMAIN, "user_id": USER, "credentials": {"password": password}}
    state = {}

    @check("pygrpc: services found through reflection v1alpha")
    def _():
        # Fails with "list index out of range" when a listed file is not
        # under its package path (tokengate's bug before issue 13).
        client = pygrpc.client(endpoint=endpoint)
        expect(
            client.api_resources.get("Token") == ["issue", "refresh"],
            f"Token: {client.api_resources}",
        )
        expect(
            client.api_resources.get("Domain") == ["get_public_key"],
            f"Domain: {client.api_resources}",
        )
        state["client"] = client

    client = state["client"]

    @check("pygrpc: Token.issue")
    def _():
        answer = client.Token.issue(login)
        claims = jwt.get_unverified_claims(answer.access_token)
        expect(claims.get("cat") == "ACCESS_TOKEN", f"claims {claims}")
        expect(claims.get("did") == DOMAIN and claims.get("aud") == USER, f"claims {claims}")
        refresh = jwt.get_unverified_claims(answer.refresh_token)
        expect(refresh.get("cat") == "REFRESH_TOKEN", f"refresh claims {refresh}")
        state["issued"] = answer

    @check("pygrpc: Token.issue, wrong password -> ERROR_AUTHENTICATE_FAILURE")
    def _():
        wrong = dict(login, credentials={"password": password + "-wrong"})
        error = raises(lambda: client.Token.issue(wrong))
        expect(error.error_code == "ERROR_AUTHENTICATE_FAILURE", repr(error))
        expect("is not exist or password is not correct" in error.message, repr(error))

    @check("pygrpc: Token.refresh with metadata token")
    def _():
        issued = state["issued"]
        answer = client.Token.refresh({}, metadata=(("token", issued.refresh_token),))
        expect(answer.access_token and answer.refresh_token, "an empty pair")
        expect(answer.refresh_token != issued.refresh_token, "the same refresh token")
        claims = jwt.get_unverified_claims(answer.refresh_token)
        expect(claims.get("cat") == "REFRESH_TOKEN", f"claims {claims}")
        state["refreshed"] = answer

    @check("pygrpc: Domain.get_public_key")
    def _():
        answer = client.Domain.get_public_key({"domain_id": DOMAIN})
        expect(answer.domain_id == DOMAIN, f"domain_id {answer.domain_id}")
        jwk = json.loads(answer.public_key)
        header = jwt.get_unverified_header(state["refreshed"].access_token)
        expect(jwk.get("kty") == "RSA", f"jwk {jwk}")
        expect(jwk.get("kid") == header.get("kid"), f"kid {jwk.get('kid')} vs {header}")
        state["jwk"] = jwk

    @check("spaceone-core: JWTAuthenticator verifies the access token")
    def _():
        payload = JWTAuthenticator(state["jwk"]).validate(state["refreshed"].access_token)
        expect(payload.get("did") == DOMAIN and payload.get("aud") == USER, f"{payload}")

    configure_spaceone(endpoint)

    @check("spaceone-core: a 1.10 service's token check (AuthenticationGRPCHandler)")
    def _():
        service = WhoAmIService(metadata={"token": state["refreshed"].access_token})
        me = service.whoami({})
        expect(
            me == {"domain_id": DOMAIN, "user_id": USER, "token_type": "ACCESS_TOKEN"},
            f"{me}",
        )

    @check("spaceone-core: the token check refuses a refresh token")
    def _():
        service = WhoAmIService(metadata={"token": state["refreshed"].refresh_token})
        error = raises(lambda: service.whoami({}))
        expect(error.error_code == "ERROR_AUTHENTICATE_FAILURE", repr(error))

    @check("spaceone-api stub: Domain.list -> UNIMPLEMENTED naming what is served")
    def _():
        with grpc.insecure_channel(endpoint) as channel:
            stub = domain_pb2_grpc.DomainStub(channel)
            error = raises(lambda: stub.list(domain_pb2.DomainQuery()), grpc.RpcError)
        expect(error.code() == grpc.StatusCode.UNIMPLEMENTED, f"{error.code()}")
        details = error.details()
        expect(
            "Method not found: /spaceone.api.identity.v1.Domain/list" in details, details
        )
        expect("spaceone.api.identity.v1.Token/issue" in details, details)

    if args.spacectl:
        with tempfile.TemporaryDirectory(prefix="tokengate-spacectl-") as home:
            spacectl_checks(args.spacectl, home, endpoint, login, state)

    print(f"{len(PASSED)} passed, 0 failed")


if __name__ == "__main__":
    main()
