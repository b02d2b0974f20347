#!/usr/bin/env python3
"""Completeness of segura's log, which peers.py cannot parse: runs `segura rec -- cat FILE` through
a pty exactly as peers.py does (its own spawn/reap), then compares, byte for byte, what the
terminal received with what `segura export --format raw` gives back. Usage:
  complete.py PEERS_DIR [--kind base64|text] [--mib 64] [--reps 3]"""
import argparse, hashlib, os, shutil, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("peers_dir")
ap.add_argument("--kind", default="base64")
ap.add_argument("--mib", type=int, default=64)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--work", default="/var/tmp/peers-bench")
a = ap.parse_args()
sys.path.insert(0, a.peers_dir)
import peers  # noqa: E402

os.makedirs(a.work, exist_ok=True)
fpath = os.path.join(a.work, "workload-%s-%dMiB.txt" % (a.kind, a.mib))
peers.make_workload(fpath, a.mib, a.kind)
spec = {"argv": ["segura", "rec", "--spool", "{out}/spool.db", "--", "sh", "-c", "{cmd}"],
        "env": {"SEGURA_CONFIG": "/dev/null"}}
ok = 0
for rep in range(a.reps):
    out = tempfile.mkdtemp(prefix="segura-complete-")
    pid, fd = peers.spawn(spec, "cat " + fpath, out)
    sink = []
    term = hashlib.sha256()
    n = 0
    # peers.reap keeps only the tail; read everything here to hash it.
    import select
    deadline = time.monotonic() + 300
    while True:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                b = os.read(fd, 1 << 16)
            except OSError:
                b = b""
            if not b:
                break
            term.update(b)
            n += len(b)
        if time.monotonic() > deadline:
            sys.exit("timeout")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    log = subprocess.run(["segura", "--spool", out + "/spool.db", "export", "--format", "raw",
                          subprocess.run(["segura", "--spool", out + "/spool.db", "ls", "--json"],
                                         capture_output=True, text=True, check=True,
                                         env=dict(os.environ, SEGURA_CONFIG="/dev/null"))
                          .stdout.split('"id": "')[1].split('"')[0]],
                         capture_output=True, check=True, env=dict(os.environ, SEGURA_CONFIG="/dev/null")).stdout
    same = hashlib.sha256(log).digest() == term.digest()
    ok += same
    print("rep %d: terminal %d bytes, log %d bytes, identical: %s" % (rep, n, len(log), same))
    shutil.rmtree(out, ignore_errors=True)
print("complete: %d/%d repetitions with every byte in both the terminal and the log" % (ok, a.reps))
sys.exit(0 if ok == a.reps else 1)
