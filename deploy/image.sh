#!/usr/bin/env bash
# Builds tokengate's container image with buildah: no Docker daemon, and no
# registry needed. The image is the Dockerfile's `runtime` stage with a
# prebuilt release binary (BINARY=prebuilt), on a base chosen by --base:
#
#   host   (default) a base assembled here from this machine's Debian
#          packages: only the files the binary links against (ldd), the
#          dynamic loader, the CA bundle, and the "nonroot" user 65532 —
#          what distroless cc provides, without a registry to pull it from
#   IMAGE  any image buildah can use, e.g. gcr.io/distroless/cc-debian13:nonroot
#          (the Dockerfile's default; needs a registry, or the image in store)
#
#   deploy/image.sh [--base host|IMAGE] [--binary FILE] [--tag NAME:TAG]
#                   [--push DESTINATION [--pin NAME]]
#
#   --binary FILE  the binary to ship (default: target/release/tokengate,
#                  built first with cargo build --release --locked)
#   --tag          the image's name (default tokengate:<Cargo.toml version>,
#                  the name and tag the Kubernetes overlays use)
#   --push DEST    buildah push to DEST (docker://registry/tokengate:tag,
#                  oci:DIR:tag, docker-archive:FILE:tokengate:tag, ...) and
#                  print the pushed manifest's digest
#   --pin NAME     then point the production overlay at NAME@<that digest>
#                  (deploy/README.md, "Production", step 1)
#
# Prints the image's name, id, size and labels; writes them to
# target/image/image.env for tools/image-check.sh. buildah runs with the vfs
# storage driver and chroot isolation (works in containers and without
# kernel overlay support); as root (CI), or rootless through `buildah
# unshare` (it re-runs itself so; needs /etc/subuid entries; untried in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

base=host binary="" tag="" push="" pin=""
while (($#)); do
  case $1 in
  --base) base=$2 && shift 2 ;;
  --binary) binary=$2 && shift 2 ;;
  --tag) tag=$2 && shift 2 ;;
  --push) push=$2 && shift 2 ;;
  --pin) pin=$2 && shift 2 ;;
  *)
    sed -n '/^#   deploy\/image.sh \[/,/^#                   \[--push/p' "$0" | sed 's/^# *//' >&2
    exit 2
    ;;
  esac
done
[[ -z $pin || -n $push ]] || { echo "--pin needs --push (the digest is the pushed manifest's)" >&2 && exit 2; }

command -v buildah >/dev/null || { echo "buildah is needed: apt-get install -y buildah" >&2 && exit 1; }
# Rootless: the same script inside buildah's user namespace (mount needs it).
if ((EUID != 0)) && [[ -z ${BUILDAH_ISOLATION_UNSHARED:-} ]]; then
  export BUILDAH_ISOLATION_UNSHARED=1
  exec buildah unshare "$0" "$@"
fi
B=(buildah --storage-driver vfs)
export BUILDAH_ISOLATION=chroot

meta() { # a field of Cargo.toml's [workspace.package]
  python3 -c 'import sys, tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"][sys.argv[1]])' "$1"
}
version=$(meta version)
license=$(meta license)
source_url=$(meta repository)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
# Every timestamp in the image is the commit's: the same inputs give the
# same image (and digest).
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
tag=${tag:-tokengate:$version}
out=$ROOT/target/image
mkdir -p "$out"

if [[ -z $binary ]]; then
  echo "==> cargo build --release --locked --package tokengate --bin tokengate"
  cargo build --release --locked --quiet --package tokengate --bin tokengate
  binary=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/tokengate
fi
[[ -x $binary ]] || { echo "no executable at $binary" >&2 && exit 1; }

work=$(mktemp -d)
containers=()
cleanup() {
  for c in "${containers[@]}"; do "${B[@]}" rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

image_id() { # name -> its image id, or nothing
  "${B[@]}" images --quiet --no-trunc "$1" 2>/dev/null | sed 's/^sha256://' || true
}
drop_if_replaced() { # old id, new id: the old image, untagged by the new one, goes
  if [[ -n $1 && $1 != "${2#sha256:}" ]]; then "${B[@]}" rmi "$1" >/dev/null 2>&1 || true; fi
}

# The host base -----------------------------------------------------------------
# Copies host path $1 into rootfs $2 as it is on the host: every symlink on
# the way (Debian's merged /usr: /lib -> usr/lib, /lib64 -> usr/lib64, the
# loader's own link) is recreated, then the file itself.
copy_in() {
  local path=$1 rootfs=$2 done_part="" rest part target
  rest=${path#/}
  while [[ -n $rest ]]; do
    part=${rest%%/*}
    [[ $rest == */* ]] && rest=${rest#*/} || rest=""
    done_part="$done_part/$part"
    if [[ -L $done_part ]]; then
      target=$(readlink "$done_part")
      [[ -L $rootfs$done_part ]] || ln -s "$target" "$rootfs$done_part"
      [[ $target == /* ]] || target="$(dirname "$done_part")/$target"
      copy_in "$(realpath -m -s "$target")${rest:+/$rest}" "$rootfs"
      return
    elif [[ -d $done_part ]]; then
      mkdir -p "$rootfs$done_part"
    else
      cp -p "$done_part" "$rootfs$done_part"
    fi
  done
}

host_base() {
  local c rootfs libs packages old new name=localhost/tokengate-base:host
  echo "==> base: assembled from this host's Debian packages ($(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release))" >&2
  # What the binary loads: its libraries and the loader (ldd's last column
  # for "lib => /path", the first for "/path (addr)").
  mapfile -t libs < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  ((${#libs[@]})) || { echo "ldd found no libraries: is $binary dynamically linked?" >&2 && exit 1; }
  c=$("${B[@]}" from --quiet scratch)
  containers+=("$c")
  rootfs=$("${B[@]}" mount "$c")
  for lib in "${libs[@]}"; do copy_in "$lib" "$rootfs"; done
  copy_in /etc/ssl/certs/ca-certificates.crt "$rootfs"
  # distroless's users and layout: root, nobody, and nonroot (65532) with
  # its home; a sticky /tmp; no shell for anyone.
  mkdir -p "$rootfs"/{etc,tmp,home/nonroot}
  chmod 1777 "$rootfs/tmp"
  chmod 0700 "$rootfs/home/nonroot"
  chown 65532:65532 "$rootfs/home/nonroot"
  cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  cp -p /etc/os-release "$rootfs/etc/os-release"
  # Which Debian packages the files came from, with their versions.
  packages=$({
    for lib in "${libs[@]}"; do dpkg -S "$(realpath "$lib")" 2>/dev/null || dpkg -S "$lib"; done | cut -d: -f1
    echo ca-certificates
  } | sort -u | xargs dpkg-query -W -f "\${Package}=\${Version} " | sed 's/ $//')
  "${B[@]}" umount "$c" >/dev/null
  "${B[@]}" config --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label "tokengate.base.packages=$packages" "$c"
  echo "    packages: $packages" >&2
  old=$(image_id "$name")
  new=$("${B[@]}" commit --quiet --rm --timestamp "$epoch" "$c" "$name")
  drop_if_replaced "$old" "$new"
  containers=()
  echo "$name"
}

if [[ $base == host ]]; then
  base_image=$(host_base)
else
  base_image=$base
fi

# The image: the Dockerfile's runtime stage, binary from the context --------------
echo "==> buildah build --target runtime --build-arg BINARY=prebuilt --build-arg BASE=$base_image"
# Without the line tables ([profile.release] debug = "line-tables-only" keeps
# them for profiling): the code is the same, the file a quarter the size.
# Panics still name the function; target/image/tokengate.debug (linked by
# its build id) has the lines back for a debugger or addr2line.
objcopy --only-keep-debug "$binary" "$out/tokengate.debug"
objcopy --strip-debug --add-gnu-debuglink="$out/tokengate.debug" "$binary" "$work/tokengate"
old_id=$(image_id "$tag")
containers_before=$("${B[@]}" containers --quiet --notruncate | sort)
"${B[@]}" build --quiet --isolation chroot --pull=never \
  --file "$ROOT/Dockerfile" --target runtime \
  --build-arg BINARY=prebuilt --build-arg "BASE=$base_image" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  --build-arg "SOURCE=$source_url" --build-arg "LICENSES=$license" \
  --timestamp "$epoch" --tag "$tag" "$work" >"$work/id"
id=$(cat "$work/id")
# The previous build of this tag, now untagged, goes (vfs keeps full copies).
drop_if_replaced "$old_id" "$id"
# buildah 1.28 leaves the working containers of the stage chosen by BINARY,
# and their images: gone too (with vfs, each is a full copy).
comm -13 <(echo "$containers_before") <("${B[@]}" containers --quiet --notruncate | sort) |
  while read -r leftover; do "${B[@]}" rm "$leftover" >/dev/null; done
"${B[@]}" rmi --prune >/dev/null 2>&1 || true

# The size as a node pulls it (gzip layers and config, as pushed) and as it
# stores it (the layers unpacked): from the image written as an OCI layout.
"${B[@]}" push --quiet "$tag" "oci:$work/oci:latest" >/dev/null
read -r size compressed < <(python3 - "$work/oci" <<'EOF'
import gzip, json, os, sys
d = sys.argv[1]
blob = lambda digest: os.path.join(d, "blobs", *digest.split(":"))
index = json.load(open(os.path.join(d, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
packed = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
unpacked = 0
for layer in manifest["layers"]:
    opener = gzip.open if layer["mediaType"].endswith("gzip") else open
    with opener(blob(layer["digest"]), "rb") as f:
        while chunk := f.read(1 << 20):
            unpacked += len(chunk)
print(unpacked, packed)
EOF
)
# shellcheck disable=SC2016 # a Go template, not shell
labels=$("${B[@]}" inspect --type image --format '{{range $k, $v := .OCIv1.Config.Labels}}{{$k}}={{$v}}{{"\n"}}{{end}}' "$tag")

mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1048576:.1f} MiB')" "$1"; }
echo "image: localhost/$tag"
echo "id: $id"
echo "base: $base_image"
echo "binary: $(mib "$(stat -c %s "$work/tokengate")") ($(mib "$(stat -c %s "$binary")") before --strip-debug)"
echo "size: $(mib "$size") uncompressed, $(mib "$compressed") compressed (layers + config)"
echo "labels:"
while IFS= read -r line; do echo "  $line"; done <<<"$labels"

digest=""
if [[ -n $push ]]; then
  "${B[@]}" push --quiet --digestfile "$work/digest" "$tag" "$push"
  digest=$(cat "$work/digest")
  echo "pushed: $push@$digest"
fi
if [[ -n $pin ]]; then
  python3 - deploy/kubernetes/overlays/production/kustomization.yaml "$pin" "$digest" <<'EOF'
import re, sys
path, name, digest = sys.argv[1:]
text = open(path).read()
# The tokengate entry of `images:`: its name line, then its fields (newName,
# newTag, digest), replaced by the pinned name and digest.
entry = re.compile(r"(?m)^(  - name: tokengate\n)((    (newName|newTag|digest): .*\n)*)")
if not entry.search(text):
    sys.exit(f"{path}: no `images:` entry for tokengate to pin")
text = entry.sub(lambda m: f"{m.group(1)}    newName: {name}\n    digest: {digest}\n", text, count=1)
open(path, "w").write(text)
EOF
  echo "pinned: deploy/kubernetes/overlays/production -> $pin@$digest"
fi

cat >"$out/image.env" <<EOF
IMAGE=localhost/$tag
IMAGE_ID=$id
IMAGE_BASE=$base_image
IMAGE_SIZE=$size
IMAGE_COMPRESSED=$compressed
IMAGE_DIGEST=$digest
EOF
