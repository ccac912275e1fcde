"""Loading the core makes glibc keep freed memory for reuse (fields3d/_memory.py): a large tensor
allocated again after being freed costs no new page faults, unless FIELDS3D_KEEP_FREED_MEMORY=0."""

import os
import subprocess
import sys

import pytest

# Allocates and fills a 64 MB tensor twice, freeing it in between, after loading the core (through
# fields3d.info()); prints whether memory is kept and the minor page faults of the second round.
PROBE = """
import resource, torch, fields3d
info = fields3d.info()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t = torch.ones(16 << 20); del t
before = faults()
t = torch.ones(16 << 20); del t
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
    assert faults < PAGES // 10, f"{faults} page faults for a reused 64 MB tensor ({PAGES} pages)"


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc settings: Linux only"
)
def test_opting_out_leaves_glibc_defaults():
    kept, faults = probe("0")
    assert not kept
    assert faults >= PAGES // 2, "glibc's default returns a freed 64 MB tensor to the kernel"
