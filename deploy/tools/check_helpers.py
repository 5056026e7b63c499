"""Helpers for deploy/check.sh (run with the check virtualenv's python).

  yaml2json IN.yaml OUT.json     every document of IN as one JSON array
  snapshot DIR OUT.json          {path: text} of every file under DIR, so the
                                 Rust test can tell that a rendering is stale
  docker-context REPO OUT        copies REPO minus what .dockerignore excludes:
                                 the files `docker build .` would send
"""

import json
import os
import re
import shutil
import sys

import yaml


def yaml2json(src, dst):
    with open(src, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(docs, f, indent=1, sort_keys=True)


def snapshot(root, dst):
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                files[os.path.relpath(path, root)] = f.read()
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(files, f, indent=1, sort_keys=True)


def _pattern(text):
    """A .dockerignore pattern as a regex over slash-separated paths
    (Docker's rules: `**` any number of folders, `*` and `?` within one)."""
    out = ""
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif text.startswith("**", i):
            out += ".*"
            i += 2
        elif text[i] == "*":
            out += "[^/]*"
            i += 1
        elif text[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(text[i])
            i += 1
    return re.compile(out + r"\Z")


def _rules(repo):
    rules = []
    with open(os.path.join(repo, ".dockerignore"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((negate, _pattern(pattern)))
    return rules


def _excluded(rules, rel):
    """The last rule matching the path or one of its parent folders wins."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(p) for p in prefixes):
            excluded = not negate
    return excluded


def docker_context(repo, dst):
    rules = _rules(repo)
    if os.path.exists(dst):
        shutil.rmtree(dst)
    for folder, dirs, names in os.walk(repo):
        rel_folder = os.path.relpath(folder, repo)
        rel_folder = "" if rel_folder == "." else rel_folder
        # Never descend into excluded folders that no exception reopens.
        kept = []
        for d in dirs:
            rel = f"{rel_folder}/{d}" if rel_folder else d
            if not (_excluded(rules, rel) and not any(n for n, _ in rules)):
                kept.append(d)
        dirs[:] = kept
        for name in names:
            rel = f"{rel_folder}/{name}" if rel_folder else name
            if _excluded(rules, rel):
                continue
            target = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(repo, rel), target, follow_symlinks=False)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"yaml2json": yaml2json, "snapshot": snapshot, "docker-context": docker_context}[command](*args)
