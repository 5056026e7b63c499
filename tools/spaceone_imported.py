"""Verifies tokens tokengate issued with keys imported from SpaceONE in
SpaceONE 1.10's own verifier (spaceone-core's JWTAuthenticator, what every
SpaceONE service runs on each call), with the domain's pub_jwk as SpaceONE
stored it (the export's expected.json, not tokengate's answer): the proof
behind the migration guide's roll back. tools/spaceone-imported.sh runs it
against tokengate serving the imported fixtures.

tokengate's JWT header carries a `kid` (SpaceONE's tokens have none); the
check shows SpaceONE's verifier ignores it.

Prints one `ok   <name>` line per check; exits non-zero on the first
failure.
"""

import argparse
import base64
import json
import sys
import urllib.request
import warnings

warnings.filterwarnings("ignore")

from spaceone.core.auth.jwt import JWTAuthenticator, JWTUtil  # noqa: E402


def post(base, path, body):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def header(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--expected", required=True)
    args = parser.parse_args()
    with open(args.expected) as f:
        expected = json.load(f)

    domain_id = "domain-alpha"
    pub_jwk = expected["keys"][domain_id]["pub_jwk"]
    users = {u["user_id"]: u for u in expected["users"] if u["domain_id"] == domain_id}
    owner = next(o for o in expected["owners"] if o["domain_id"] == domain_id)
    logins = [
        ("user", {"user_id": "alice@example.com", "password": users["alice@example.com"]["password"]}),
        ("owner", {"user_id": owner["owner_id"], "password": owner["password"], "user_type": "DOMAIN_OWNER"}),
    ]
    for name, login in logins:
        body = {
            "domain_id": domain_id,
            "user_id": login["user_id"],
            "credentials": {"password": login["password"]},
        }
        if "user_type" in login:
            body["user_type"] = login["user_type"]
        pair = post(args.base, "/identity/v1/token/issue", body)
        token = pair["access_token"]
        kid = header(token).get("kid", "")
        if "-spaceone-" not in kid:
            print(f"FAIL {name}: the access token is not signed by the imported key (kid {kid!r})")
            sys.exit(1)
        print(f"ok   {name}: tokengate's header names the imported key ({kid})")
        try:
            payload = JWTAuthenticator(pub_jwk).validate(token)
        except Exception as e:
            print(f"FAIL {name}: SpaceONE's JWTAuthenticator refused tokengate's token: {e}")
            sys.exit(1)
        if payload.get("did") != domain_id or payload.get("aud") != login["user_id"]:
            print(f"FAIL {name}: unexpected claims {payload}")
            sys.exit(1)
        print(f"ok   {name}: SpaceONE 1.10's JWTAuthenticator verifies it with SpaceONE's pub_jwk (kid ignored)")

    # And the negative: another domain's pub_jwk does not verify it.
    other = expected["keys"]["domain-beta"]["pub_jwk"]
    try:
        JWTAuthenticator(other).validate(token)
    except Exception:
        print("ok   another domain's pub_jwk refuses it")
    else:
        print("FAIL another domain's pub_jwk verified it")
        sys.exit(1)

    # The fixture's SpaceONE refresh token (the one tokengate adopts, in
    # tests/import_spaceone.rs) is what SpaceONE 1.10 itself makes: its
    # verifier takes it with the refresh_pub_jwk, and its JWTUtil.encode
    # writes the very same header.
    refresh = expected["keys"][domain_id]["refresh_token"]
    claims = JWTAuthenticator(expected["keys"][domain_id]["refresh_pub_jwk"]).validate(refresh)
    keys = sorted(claims)
    if keys != sorted(["cat", "user_type", "did", "aud", "iat", "exp", "key", "ttl"]):
        print(f"FAIL the fixture's SpaceONE refresh token has claims {keys}")
        sys.exit(1)
    private_jwk, _ = JWTUtil.generate_jwk()
    if header(JWTUtil.encode(claims, private_jwk)) != header(refresh):
        print(f"FAIL the fixture's refresh token header {header(refresh)} is not JWTUtil's")
        sys.exit(1)
    print("ok   the fixture's SpaceONE refresh token is JWTUtil's, with SpaceONE 1.x's claims")

    served = json.loads(post(args.base, "/identity/v1/domain/get-public-key", {"domain_id": domain_id})["public_key"])
    if any(served.get(m) != pub_jwk.get(m) for m in ("kty", "n", "e")):
        print("FAIL get_public_key does not answer SpaceONE's pub_jwk")
        sys.exit(1)
    print("ok   get_public_key answers SpaceONE's pub_jwk")


if __name__ == "__main__":
    main()
