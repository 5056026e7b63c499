#!/usr/bin/env python3
"""A kubectl stand-in for deploy/check.sh: no cluster here, yet the
`secrets.sh apply | export | rotate` round trip must be exercised.

It keeps applied objects as files under $KUBECTL_STANDIN_STATE/<namespace>/
and answers the few calls secrets.sh makes: `apply -f`, `get secrets -l
SELECTOR -o name`, `get secret NAME -o go-template=T` and `annotate pods`
(recorded, no-op). Everything that needs no cluster (create --dry-run=client,
label/annotate --local, and every go-template) is run by the real kubectl
($KUBECTL_STANDIN_REAL), so the templates secrets.sh uses are the real ones.
"""

import os
import subprocess
import sys

import yaml

REAL = os.environ["KUBECTL_STANDIN_REAL"]
STATE = os.environ["KUBECTL_STANDIN_STATE"]


def option(args, *names):
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a[len(n) + 1 :]
    return None


def path_of(namespace, name):
    return os.path.join(STATE, namespace, f"secret-{name}.yaml")


def main(args):
    if "--local" in args or "--dry-run=client" in args:
        os.execv(REAL, [REAL, *args])
    verb = args[0]
    namespace = option(args, "--namespace", "-n") or "default"
    with open(os.path.join(STATE, "calls.log"), "a", encoding="utf-8") as log:
        log.write(" ".join(args) + "\n")
    if verb == "apply":
        source = option(args, "-f", "--filename")
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            if doc.get("kind") != "Secret":
                sys.exit(f"kubectl stand-in: only Secrets, not {doc.get('kind')}")
            ns = doc["metadata"].get("namespace", namespace)
            os.makedirs(os.path.join(STATE, ns), exist_ok=True)
            with open(path_of(ns, doc["metadata"]["name"]), "w", encoding="utf-8") as f:
                yaml.safe_dump(doc, f)
            print(f"secret/{doc['metadata']['name']} configured")
        return
    if verb == "annotate" and args[1] == "pods":
        return
    if verb == "get" and args[1] == "secrets":
        want = dict(kv.split("=", 1) for kv in (option(args, "-l", "--selector") or "").split(",") if kv)
        folder = os.path.join(STATE, namespace)
        for name in sorted(os.listdir(folder) if os.path.isdir(folder) else []):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                doc = yaml.safe_load(f)
            labels = doc["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in want.items()):
                print(f"secret/{doc['metadata']['name']}")
        return
    if verb == "get" and args[1] == "secret":
        path = path_of(namespace, args[2])
        if not os.path.exists(path):
            sys.exit(f'Error from server (NotFound): secrets "{args[2]}" not found')
        template = option(args, "-o", "--output")
        result = subprocess.run(
            [REAL, "annotate", "--local", "-f", path, "kubectl-standin=1", "-o", template],
            check=True,
        )
        sys.exit(result.returncode)
    sys.exit(f"kubectl stand-in: unsupported call: {' '.join(args)}")


if __name__ == "__main__":
    main(sys.argv[1:])
