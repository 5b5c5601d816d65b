"""Issue 21's figure: ball-method segment partitions of random mixed programs (verify.strategies.mixed: rational
nonsmooth parts beside cos, exp and tanh, on random kink-biased segments), how many stay UNDECIDED (a cluster
left, or Undecided raised), how many finish within the time budget, and that every complete one is written as
a certificate that the independent checker accepts (the certificate states exactly the library's answer).

    python benchmarks/bench_certificates.py [--examples 2000] [--budget 20] [--show 10]

Prints the counts, the UNDECIDED rate and the programs left undecided (the first --show of them).  Timing goes
here, never into tests (tests/test_certificate_evidence.py asserts the rate on a fixed small sample).
"""
import argparse
import contextlib
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402

import verify  # noqa: E402
from verify import strategies as S  # noqa: E402
from verify.certify import segment_partition  # noqa: E402
from verify.certify.segment import segment_certificate  # noqa: E402
from verify.checker import check  # noqa: E402
from verify.program.ir import to_text  # noqa: E402
from verify.strategies.mixed import mixed_programs  # noqa: E402


class _Budget(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    def handler(signum, frame):
        raise _Budget()
    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def measure(examples, budget):
    """{"complete", "cluster", "raised", "timeout", "domain", "checked", "cert_failed"} and the undecided ones."""
    counts = dict.fromkeys(("complete", "cluster", "raised", "timeout", "domain", "checked", "cert_failed"), 0)
    left = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(mixed_programs(), st.data())
    def one(P, data):
        x, y = data.draw(S.segments(P))
        if x == y:
            return
        try:
            with time_limit(budget):
                part = segment_partition(P, x, y, method="ball")
        except _Budget:
            counts["timeout"] += 1
            return
        except verify.DomainError:
            counts["domain"] += 1
            return
        except verify.Undecided as u:
            counts["raised"] += 1
            left.append((to_text(P), x, y, str(u)))
            return
        if not part.complete:
            counts["cluster"] += 1
            left.append((to_text(P), x, y, "a cluster"))
            return
        counts["complete"] += 1
        try:
            cert = json.loads(json.dumps(segment_certificate(part)))
            check(cert)
            assert cert["result"] == part.json()
            counts["checked"] += 1
        except Exception as e:  # noqa: BLE001 - a certificate that does not check is the figure's failure
            counts["cert_failed"] += 1
            left.append((to_text(P), x, y, f"certificate: {type(e).__name__}: {e}"))
    one()
    return counts, left


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--budget", type=int, default=20, help="seconds per partition")
    ap.add_argument("--show", type=int, default=10)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    counts, left = measure(args.examples, args.budget)
    total = counts["complete"] + counts["cluster"] + counts["raised"] + counts["timeout"]
    und = total - counts["complete"]
    print(f"ball segments of mixed programs: {total} partitions (+{counts['domain']} not defined on the segment) "
          f"in {time.perf_counter() - t0:.0f} s")
    print(f"  UNDECIDED {und} ({100 * und / max(1, total):.2f}%): {counts['cluster']} with a cluster, "
          f"{counts['raised']} raised, {counts['timeout']} over {args.budget} s")
    print(f"  complete {counts['complete']}: certificates checked {counts['checked']}, failed {counts['cert_failed']}")
    for src, x, y, why in left[:args.show]:
        print(f"\n{why} from {[str(v) for v in x]} to {[str(v) for v in y]}\n{src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
