"""Folds a perf profile of the server into categories (benches/profile.sh).

Usage: python3 profile.py PERF_DATA PERF_STAT_CSV OPS_PER_SECOND WINDOW_SECONDS

Each sample is given to the first category whose rule matches its call stack, so a sample of
malloc inside sea-orm counts as sea-orm. Microseconds per operation are the category's share
of the CPU per operation that perf stat measured over the window.
"""
import collections
import re
import subprocess
import sys

data, stat, rate, window = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ops = rate * window

STEPS = "probe_authbridge:statement_step"
counts = {}
for line in open(stat):
    fields = line.strip().split(",")
    if len(fields) > 2 and fields[0].replace(".", "").isdigit():
        counts[fields[2]] = float(fields[0])
cpu_us = counts.get("task-clock", 0) * 1000 / ops
print(f"per operation (window of {window:.0f} s at {rate:.0f}/s): CPU {cpu_us:.0f} µs, "
      f"context switches {counts.get('context-switches', 0) / ops:.1f}"
      + (f", SQLite statement steps {counts[STEPS] / ops:.1f}" if STEPS in counts else ""))


def kernel(rule):
    return lambda stack, leaf: "[kernel" in leaf and re.search(rule, stack) is not None


def stack_has(rule):
    return lambda stack, leaf: re.search(rule, stack) is not None


RULES = [
    # The RSA assembly may not unwind to its caller: its own symbols count too.
    ("RS256 signing and verifying (aws-lc)", stack_has(r"Signer::sign|aws_lc_\S*(rsa|RSAZ|rsaz|BN_|bn_)")),
    ("hashing, sealing (SHA-256, AES-GCM)", stack_has(r"sha256|Sha256|aes_gcm|Aes256Gcm|vault::")),
    ("kernel: thread hand-offs (futex wake and wait)", kernel(r"__x64_sys_futex")),
    ("kernel: file I/O (SQLite)", kernel(r"__x64_sys_(pwrite|pread|fsync|fdatasync|fcntl|openat|close)")),
    ("kernel: sockets, epoll (HTTP)", kernel(r"__x64_sys_(epoll|sendto|recvfrom|writev|write|read|accept)")),
    ("kernel: other (scheduler ticks, interrupts)", lambda stack, leaf: "[kernel" in leaf),
    ("SQLite engine", lambda stack, leaf: re.search(r"sqlite3|pcache1|getPage|wal[A-Z]|[Bb]tree|[Vv]dbe", leaf) is not None),
    ("sqlx's SQLite worker thread (rest)", stack_has(r"sqlx_sqlite|flume")),
    ("sea-query: building SQL", stack_has(r"sea_query\S*(build|prepare_)")),
    ("sea-orm, sqlx: executing, decoding", stack_has(r"sea_orm|sqlx")),
    ("JSON", stack_has(r"serde_json")),
    ("HTTP (hyper, poem)", stack_has(r"hyper|poem")),
    ("tokio: scheduling, timers", stack_has(r"tokio")),
    ("other", lambda stack, leaf: True),
]

script = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym,dso"],
                        capture_output=True, text=True, check=True).stdout
tally = collections.Counter()
threads = collections.Counter()
for block in script.split("\n\n"):
    lines = [line.strip() for line in block.strip().split("\n") if line.strip()]
    if len(lines) < 2:
        continue
    threads[lines[0].split()[0]] += 1
    leaf, stack = lines[1], "\n".join(lines[1:])
    for name, matches in RULES:
        if matches(stack, leaf):
            tally[name] += 1
            break
total = sum(tally.values()) or 1
print(f"{total} samples; threads: "
      + ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in threads.most_common()))
for name, n in tally.most_common():
    print(f"{100 * n / total:5.1f} %  {cpu_us * n / total:5.0f} µs  {name}")
