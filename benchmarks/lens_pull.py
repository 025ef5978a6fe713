"""Benchmark: Lens API pull throughput and peak memory against the loopback fake.

Run: `.venv/bin/python benchmarks/lens_pull.py` (or `make bench-lens`). Each size is pulled in a
fresh child process, so its peak RSS is its own; the fake server runs in this process.
Targets (issue 3): at least 10,000 devices/s, and peak memory not growing with the device count.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
SIZES = (25_000, 100_000, 400_000)


def child(size: int, token_url: str, graphql_url: str, client_id: str, secret: str) -> None:
    from builders import contract, make_workspace, write_yaml

    from pipelines.core.config import load_config
    from pipelines.core.months import Month
    from pipelines.lens_api.client import LensCredentials
    from pipelines.lens_api.pull import pull_lens

    with tempfile.TemporaryDirectory() as root:
        workspace = make_workspace(Path(root), [contract("bench", lens_tenant_id=f"t-{size}")])
        write_yaml(workspace.partner_file, {"lens": {"token_url": token_url,
                                                     "graphql_url": graphql_url,
                                                     "page_size": 1000}})
        config = load_config(workspace)
        started = time.perf_counter()
        [result] = pull_lens(config, Month.of(date.today()),
                             credentials=LensCredentials(client_id, secret))
        seconds = time.perf_counter() - started
    assert result.devices == size, result.detail
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"devices": size, "seconds": seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    from fake_lens import FakeLens

    with FakeLens({f"t-{size}": size for size in SIZES}) as fake:
        print(f"{'devices':>9} {'seconds':>8} {'devices/s':>10} {'peak RSS MB':>12}")
        for size in SIZES:
            done = subprocess.run([sys.executable, __file__, "--child", str(size),
                                   fake.token_url, fake.graphql_url, fake.client_id,
                                   fake.client_secret], capture_output=True, text=True,
                                  check=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{size:>9,} {figures['seconds']:>8.2f} "
                  f"{size / figures['seconds']:>10,.0f} {figures['peak_rss_mb']:>12.0f}")
    print("targets: >= 10,000 devices/s; peak RSS flat as the device count grows "
          "(the fake server's time is included in the figures)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]), *sys.argv[3:7])
    else:
        main()
