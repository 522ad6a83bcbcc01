"""Builds a one-layer busybox image archive that every engine imports.

usage: mkimage.py OUT.tar NAME:TAG

The layer holds /bin/busybox (Debian's busybox-static) and applet symlinks.
The archive is both an OCI image layout (oci-layout, index.json, blobs/:
`ctr images import`, `podman load`) and a docker-archive (manifest.json
pointing into blobs/: `docker load`), so one file serves all three engines.
Only the standard library is used.
"""
import hashlib, io, json, os, sys, tarfile, time
out, name = sys.argv[1], sys.argv[2]
bb = "/bin/busybox"
def layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def d(p):
            ti = tarfile.TarInfo(p); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 0; t.addfile(ti)
        for p in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"]:
            d(p)
        ti = t.gettarinfo(bb, "bin/busybox"); ti.mtime = 0; ti.uid = ti.gid = 0; ti.uname = ti.gname = ""
        with open(bb, "rb") as f: t.addfile(ti, f)
        for a in ["sh", "echo", "cat", "ls", "sleep", "id", "ps", "tty", "true", "false", "env",
                  "hostname", "top", "grep", "mkdir", "mount", "umount", "touch", "rm", "head",
                  "seq"]:
            ti = tarfile.TarInfo("bin/" + a); ti.type = tarfile.SYMTYPE; ti.linkname = "busybox"; ti.mtime = 0; t.addfile(ti)
        for fn, txt in [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")]:
            b = txt.encode(); ti = tarfile.TarInfo(fn); ti.size = len(b); ti.mode = 0o644; ti.mtime = 0; t.addfile(ti, io.BytesIO(b))
    return buf.getvalue()
blobs = {}
def blob(b):
    h = hashlib.sha256(b).hexdigest(); blobs[h] = b; return "sha256:" + h, len(b)
L = layer(); ld, ls_ = blob(L)
cfg = {"architecture": "amd64", "os": "linux",
       "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
       "rootfs": {"type": "layers", "diff_ids": [ld]}, "history": [{"created_by": "mkimage"}]}
cd, cl = blob(json.dumps(cfg).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cl},
       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls_}]}
md, ml = blob(json.dumps(man).encode())
repo, tag = name.rsplit(":", 1)
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ml,
         "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}]}
dmanifest = [{"Config": "blobs/sha256/" + cd[7:], "RepoTags": [name], "Layers": ["blobs/sha256/" + ld[7:]]}]
with tarfile.open(out, "w") as t:
    def f(p, b):
        ti = tarfile.TarInfo(p); ti.size = len(b); ti.mode = 0o644; t.addfile(ti, io.BytesIO(b))
    f("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    for h, b in blobs.items(): f("blobs/sha256/" + h, b)
    f("index.json", json.dumps(index).encode())
    f("manifest.json", json.dumps(dmanifest).encode())
