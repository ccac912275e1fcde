"""Loading the core makes glibc keep freed memory for reuse (fields3d/_memory.py): once a loop that
allocates and frees large tensors has run a few steps, its steps cost no new page faults, unless
FIELDS3D_KEEP_FREED_MEMORY=0."""

import os
import subprocess
import sys

import pytest

# After loading the core (through fields3d.info()), runs a step that allocates, fills and frees two
# 64 MB tensors with a small one between them (as a training step's temporaries), 8 times to
# settle, then counts the minor page faults of 3 more. (The steps to settle are needed: a freed
# 64 MB block cannot serve posix_memalign's request for 64 MB plus its alignment, so the heap grows
# until freed neighbours merge.)
PROBE = """
import resource, torch, fields3d
info = fields3d.info()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():
    a = torch.ones(16 << 20)
    b = torch.ones(1000)
    del a
    c = torch.ones(16 << 20)
    del b, c
for _ in range(8):
    step()
before = faults()
for _ in range(3):
    step()
print(info["keeps_freed_memory"], faults() - before)
"""
PAGES = (64 << 20) // 4096  # pages of the 64 MB tensor


def probe(env_value):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("FIELDS3D_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["FIELDS3D_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc settings: Linux only"
)
def test_freed_memory_is_reused_without_page_faults():
    kept, faults = probe(None)
    assert kept
    # glibc's default faults in all 6 tensors (6 * PAGES); kept, the settled steps fault in none
    # (rarely, one step still carves a fresh pair from the heap's top: 2 * PAGES)
    assert faults < 3 * PAGES, (
        f"{faults} page faults in 3 steps of two 64 MB tensors ({PAGES} pages each)"
    )


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc settings: Linux only"
)
def test_opting_out_leaves_glibc_defaults():
    kept, faults = probe("0")
    assert not kept
    assert faults >= 6 * PAGES, "glibc's default returns each freed 64 MB tensor to the kernel"
