"""A copy of a benchmark's set-up whose pages are on disk before the timed run starts.

A freshly copied database is dirty in the page cache, and the first checkpoint of the timed
run (SQLite's `fdatasync` of the database file) then waits for the whole copy to reach the
disk: 0.25 s of a 1,000,000-alert evaluate's wall time on the 200 MB set-up, 0.03 s at
100,000 alerts (docs/benchmarks.md, thirty-third session). No cron tick finds that: the
run before it synced what it wrote, and the kernel writes the rest back within 30 s.
Benchmarks/postgres's CHECKPOINT after CREATE DATABASE ... TEMPLATE does the same there.
"""
import os, shutil


def sync_files(*paths):
    for path in paths:
        if os.path.exists(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def copy_synced(source, target):
    """shutil.copy, then the copy flushed to disk."""
    shutil.copy(source, target)
    sync_files(target)
