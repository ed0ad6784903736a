#!/usr/bin/env python3
"""Checks that a deployment ships every file the functions read.

--static        template.yaml against what `sam build` will ship, without building: every
                absolute path in a function's environment must be shipped by the function's
                own artifact (rust-cargolambda ships /var/task/bootstrap only) or by a layer of
                the function that the template builds (the layer's Makefile target is run on a
                scratch copy, with the example policy, and must produce the file). Each
                function's binary must exist in the workspace. Fast: runs in scripts/test.sh.
--built DIR     the output of `sam build` (.aws-sam/build): each function's bootstrap is an
                aarch64 ELF executable, each path in its environment exists in its artifact or
                one of its layers' artifacts; prints every artifact's size.
Exit 0: everything shipped; 1: something a function reads is not shipped; 2: cannot check.
"""

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from iam_lint import cfn_loader  # noqa: E402  (same YAML loader for !Ref and friends)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
EM_AARCH64 = 183


def load(path):
    with open(path) as f:
        return yaml.load(f, Loader=cfn_loader())


def globals_env(template):
    return template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})


def functions(template):
    for lid, res in template.get("Resources", {}).items():
        if res.get("Type") == "AWS::Serverless::Function":
            yield lid, res


def env_paths(template, res):
    """(variable, absolute path) for every environment value that is a literal absolute path."""
    env = dict(globals_env(template))
    env.update(res.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    for name, value in env.items():
        if isinstance(value, str) and value.startswith("/"):
            yield name, value


def layer_ids(res):
    """Logical ids of the template's own layers that the function uses (!Ref)."""
    out = []
    for layer in res.get("Properties", {}).get("Layers", []):
        if isinstance(layer, dict) and "Ref" in layer:
            out.append(layer["Ref"])
    return out


def workspace_binaries():
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"], cwd=ROOT))
    return {t["name"] for p in meta["packages"] for t in p["targets"] if "bin" in t["kind"]}


def build_layer_statically(lid, res, scratch):
    """Runs the layer's Makefile target as `sam build` would; returns the artifacts folder."""
    props, meta = res.get("Properties", {}), res.get("Metadata", {})
    src = os.path.join(ROOT, props.get("ContentUri", ""))
    out = os.path.join(scratch, lid)
    os.makedirs(out)
    if meta.get("BuildMethod") != "makefile":
        # No build: sam packages the folder as it is.
        shutil.copytree(src, out, dirs_exist_ok=True)
        return out
    work = os.path.join(scratch, lid + "-src")
    shutil.copytree(src, work)
    # The user's policy is not in the repository: check the recipe with the example policy.
    if not os.path.exists(os.path.join(work, "access-policy.toml")):
        shutil.copy(os.path.join(ROOT, "access-policy.example.toml"),
                    os.path.join(work, "access-policy.toml"))
    subprocess.run(["make", "-s", "-f", "Makefile", f"build-{lid}", f"ARTIFACTS_DIR={out}"],
                   cwd=work, check=True)
    return out


def check_static(template_path):
    template = load(template_path)
    resources = template.get("Resources", {})
    problems, lines = [], []
    binaries = workspace_binaries()
    with tempfile.TemporaryDirectory() as scratch:
        built_layers = {}
        for lid, res in functions(template):
            meta = res.get("Metadata", {})
            binary = meta.get("BuildProperties", {}).get("Binary")
            if meta.get("BuildMethod") != "rust-cargolambda":
                problems.append(f"{lid}: BuildMethod is not rust-cargolambda")
            if binary not in binaries:
                problems.append(f"{lid}: binary {binary!r} is not a binary of the workspace")
            for layer in layer_ids(res):
                if layer not in resources or resources[layer].get("Type") != "AWS::Serverless::LayerVersion":
                    problems.append(f"{lid}: layer {layer} is not a layer of this template")
                elif layer not in built_layers:
                    built_layers[layer] = build_layer_statically(layer, resources[layer], scratch)
            for name, path in env_paths(template, res):
                where = shipped_where(path, {"bootstrap"}, {l: built_layers.get(l) for l in layer_ids(res)})
                if where:
                    lines.append(f"{lid}: {name}={path} shipped by {where}")
                else:
                    problems.append(f"{lid}: {name}={path} is shipped by neither its artifact "
                                    f"(bootstrap only) nor a layer")
    return lines, problems


def shipped_where(path, task_files, layers):
    if path.startswith("/var/task/"):
        rel = path[len("/var/task/"):]
        return "the function artifact" if rel in task_files else None
    if path.startswith("/opt/"):
        rel = path[len("/opt/"):]
        for lid, folder in layers.items():
            if folder and os.path.exists(os.path.join(folder, rel)):
                return f"layer {lid}"
    return None


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    endian = "<" if head[5] == 1 else ">"
    return struct.unpack(endian + "H", head[18:20])[0]


def zipped_size(folder):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for base, _, files in os.walk(folder):
            for name in files:
                full = os.path.join(base, name)
                z.write(full, os.path.relpath(full, folder))
    return buf.tell()


def check_built(build_dir):
    template = load(os.path.join(build_dir, "template.yaml"))
    resources = template.get("Resources", {})
    problems, lines = [], []

    def folder(res, key):
        uri = res.get("Properties", {}).get(key, "")
        return os.path.normpath(os.path.join(build_dir, uri)) if isinstance(uri, str) else None

    for lid, res in functions(template):
        art = folder(res, "CodeUri")
        boot = os.path.join(art, "bootstrap")
        if not os.path.isfile(boot):
            problems.append(f"{lid}: no bootstrap in {art}")
            continue
        machine = elf_machine(boot)
        if machine != EM_AARCH64:
            problems.append(f"{lid}: bootstrap is not an aarch64 executable (ELF machine {machine})")
        if not os.access(boot, os.X_OK):
            problems.append(f"{lid}: bootstrap is not executable")
        task_files = {os.path.relpath(os.path.join(b, n), art) for b, _, ns in os.walk(art) for n in ns}
        layers = {l: folder(resources[l], "ContentUri") for l in layer_ids(res) if l in resources}
        for name, path in env_paths(template, res):
            where = shipped_where(path, task_files, layers)
            if where:
                lines.append(f"{lid}: {name}={path} shipped by {where}")
            else:
                problems.append(f"{lid}: {name}={path} is in neither its artifact nor its layers")
        lines.append(f"{lid}: bootstrap {os.path.getsize(boot):,} bytes (aarch64: {machine == EM_AARCH64}), "
                     f"zipped artifact {zipped_size(art):,} bytes")
    for lid, res in resources.items():
        if res.get("Type") in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            f = folder(res, "ContentUri")
            files = sorted(os.path.relpath(os.path.join(b, n), f) for b, _, ns in os.walk(f) for n in ns)
            lines.append(f"{lid}: layer files {files}, zipped {zipped_size(f):,} bytes")
    return lines, problems


def main():
    args = sys.argv[1:]
    try:
        if args[:1] == ["--static"]:
            lines, problems = check_static(args[1] if len(args) > 1 else os.path.join(ROOT, "template.yaml"))
        elif args[:1] == ["--built"] and len(args) == 2:
            lines, problems = check_built(args[1])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, subprocess.CalledProcessError, KeyError, yaml.YAMLError) as e:
        print(f"check-deploy: cannot check: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(f"check-deploy: {line}")
    for p in problems:
        print(f"check-deploy: MISSING: {p}")
    print(f"check-deploy: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
