#!/usr/bin/python3
"""mkpkg.py: build good and hostile .kpa packages for the integration tests.

Independent of kpa-pack on purpose: a test of the installer must be able to
make packages that kpa-pack would never write.

  mkpkg.py OUT.kpa [--scenario NAME] [--id ID] [--version V] [--compress C]
                   [--delete JSON.PATH]... [--set JSON.PATH=JSON]...
                   [--files N --file-size BYTES]

Scenarios (default "good"): see SCENARIOS below.
"""
import argparse
import base64
import copy
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile

HELLO = b"#!/bin/sh\necho hello from kpa\n"
LIB = b"\x7fELF-not-really-a-library\n" * 8
CONF = b"greeting=hello\n"
LOCALE = json.dumps({"en": {"app_name": "Hello", "app_desc": "Says hello"},
                     "ru": {"app_name": "Privet"}}).encode()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def base_manifest(app_id, version, files):
    comps = [
        {"name": "hello", "digest": sha(HELLO), "componentType": "bin"},
        {"name": "libx.so", "digest": sha(LIB), "componentType": "lib"},
        {"name": "conf.txt", "digest": sha(CONF), "componentType": "res",
         "directoryPath": "data"},
        {"name": "en.json", "digest": sha(LOCALE), "componentType": "manifestLocale"},
    ]
    for name, data in files:
        comps.append({"name": name, "digest": sha(data), "componentType": "res",
                      "directoryPath": "bulk"})
    return {
        "version": "2.0",
        "application": {"id": app_id, "name": "@app_name@", "version": version,
                        "buildNumber": "1", "systemApplication": False,
                        "description": "@app_desc@"},
        "platform": {"id": "linux",
                     "sdk": {"buildSdkName": "kpa", "buildSdkVersion": "0.1",
                             "targetApiLevel": 1},
                     "hwSpecification": {"arch": platform.machine(), "cpu": ""}},
        "components": comps,
        "runConfigurations": [
            {"id": "main", "name": "Main", "type": "service", "path": "bin/hello",
             "primary": True, "args": ["--greet"],
             "envVariables": [{"name": "MODE", "value": "test"}]},
        ],
        "privateStorage": {"size": "10", "fsType": "ext4"},
    }


def members_for(files):
    m = [("bin/hello", HELLO), ("lib/libx.so", LIB), ("res/data/conf.txt", CONF),
         ("manifest_locales/en.json", LOCALE)]
    for name, data in files:
        m.append(("res/bulk/" + name, data))
    return m


def reg(name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = 0
    return ti, io.BytesIO(data)


def special(name, kind, target=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    ti.mode = 0o644
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = 1, 3
    return ti, None


class Zeros(io.RawIOBase):
    """A file object of N zero bytes that never holds them in memory."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def set_path(obj, path, value, delete=False):
    parts = []
    for p in path.split("."):
        while "[" in p:
            head, rest = p.split("[", 1)
            if head:
                parts.append(head)
            idx, p = rest.split("]", 1)
            parts.append(int(idx))
        if p:
            parts.append(p)
    for p in parts[:-1]:
        obj = obj[p]
    if delete:
        del obj[parts[-1]]
    elif isinstance(obj, list) and parts[-1] == len(obj):
        obj.append(value)
    else:
        obj[parts[-1]] = value


def build(args):
    global HELLO
    if args.bin:
        with open(args.bin, "rb") as f:
            HELLO = f.read()
    files = [("f%05d.dat" % i, os.urandom(args.file_size)) for i in range(args.files)]
    manifest = base_manifest(args.id, args.version, files)
    members = members_for(files)
    for path in args.delete:
        set_path(manifest, path, None, delete=True)
    for item in args.set:
        path, value = item.split("=", 1)
        set_path(manifest, path, json.loads(value))
    s = args.scenario
    raw_manifest = json.dumps(manifest, indent=2).encode()
    entries = []  # (TarInfo, fileobj)
    if s == "manifest-not-first":
        entries.append(reg(*members[0], mode=0o755))
        members = members[1:]
    if s == "bad-json":
        raw_manifest = b'{"version": "2.0", '
    if s == "no-manifest":
        pass
    else:
        entries.append(reg("manifest.json", raw_manifest))
    # a signature of the right form by a key nobody trusts (kpa-pack --sign
    # makes real ones): right after the manifest, after the components, or garbage
    fake_sig = json.dumps({"algorithm": "ed25519", "key": sha(b"no such key"),
                           "signature": base64.b64encode(bytes(range(64))).decode()}).encode()
    if s in ("signature", "signature-garbage"):
        entries.append(reg("manifest.sig", fake_sig if s == "signature" else b'{"x": '))
    for name, data in members:
        if s == "digest-mismatch" and name == "lib/libx.so":
            data = data + b"tampered"
        if s == "missing-component" and name == "res/data/conf.txt":
            continue
        mode = 0o755 if name.startswith("bin/") else 0o644
        if s == "setuid" and name == "bin/hello":
            mode = 0o4755
        entries.append(reg(name, data, mode))
    extra = {
        "absolute": lambda: reg("/tmp/kpa-evil", b"x"),
        "dotdot": lambda: reg("res/../../kpa-evil", b"x"),
        "symlink": lambda: special("res/data/link", tarfile.SYMTYPE, "/etc/passwd"),
        "hardlink": lambda: special("res/data/hard", tarfile.LNKTYPE, "bin/hello"),
        "device": lambda: special("res/data/dev", tarfile.CHRTYPE),
        "fifo": lambda: special("res/data/fifo", tarfile.FIFOTYPE),
        "extra-member": lambda: reg("res/data/unlisted.txt", b"not in the manifest"),
        "duplicate-member": lambda: reg("res/data/conf.txt", CONF),
        "long-path": lambda: reg("res/" + "d" * 200 + "/" + "e" * 900 + "/x", b"x"),
        "second-manifest": lambda: reg("manifest.json", raw_manifest),
    }
    if s in extra:
        entries.insert(2, extra[s]())
    if s == "signature-late":
        entries.append(reg("manifest.sig", fake_sig))
    if s == "too-many-members":
        for i in range(args.members):
            ti = tarfile.TarInfo("res/data/d%06d" % i)
            ti.type = tarfile.DIRTYPE
            entries.append((ti, None))
    if s == "bomb":
        # a 256 MiB member of zeros: its digest is right, its ratio is not
        digest = hashlib.sha256()
        chunk = bytes(1 << 20)
        for _ in range(256):
            digest.update(chunk)
        manifest["components"].append({"name": "zeros.bin", "digest": digest.hexdigest(),
                                       "componentType": "res"})
        raw_manifest = json.dumps(manifest).encode()
        entries[0] = reg("manifest.json", raw_manifest)
        ti = tarfile.TarInfo("res/zeros.bin")
        ti.size = 256 << 20
        entries.append((ti, io.BufferedReader(Zeros(256 << 20))))
    return entries


def write(args, entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, fobj in entries:
            ti.uid = ti.gid = 0
            tar.addfile(ti, fobj)
    data = buf.getvalue()
    comp = args.compress
    if comp == "gzip":
        import gzip
        data = gzip.compress(data, mtime=0)
    elif comp == "xz":
        import lzma
        data = lzma.compress(data)
    elif comp == "zstd":
        data = subprocess.run(["zstd", "-q", "-c", "-3"], input=data, check=True,
                              stdout=subprocess.PIPE).stdout
    if args.scenario == "truncated":
        data = data[: len(data) // 2]
    if args.scenario == "corrupt":
        mid = len(data) // 2
        data = data[:mid] + bytes(b ^ 0x5A for b in data[mid:mid + 64]) + data[mid + 64:]
    if args.scenario == "empty":
        data = b""
    if args.scenario == "not-archive":
        data = b"This is a text file, not a package.\n" * 20
    with open(args.out, "wb") as f:
        f.write(data)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--scenario", default="good")
    p.add_argument("--id", default="org.example.hello")
    p.add_argument("--version", default="1.0")
    p.add_argument("--compress", default="zstd", choices=["zstd", "gzip", "xz", "none"])
    p.add_argument("--delete", action="append", default=[])
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--files", type=int, default=0)
    p.add_argument("--file-size", type=int, default=1024)
    p.add_argument("--members", type=int, default=100001)
    p.add_argument("--bin", help="use this file as bin/hello")
    args = p.parse_args()
    if args.scenario == "bomb":
        args.compress = "gzip" if args.compress == "none" else args.compress
    write(args, build(args))


if __name__ == "__main__":
    sys.exit(main())
