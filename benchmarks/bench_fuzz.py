"""Fuzz throughput: examples per second per claim (hypothesis generation, the claim's checks and its oracles,
in one process), and the cost of the mutation self-test.

    python benchmarks/bench_fuzz.py [--examples N] [--seed S] [--claims lemma1 theorem2 ...] [--self-test]

Prints one row per claim: examples, ok, undecided, seconds, examples/s.  Never fails on time.
"""
import argparse
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--claims", nargs="+")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    from verify.fuzz.campaign import run_examples
    from verify.fuzz.claims import CLAIMS, NAMES
    print(f"{'claim':<14}{'examples':>9}{'ok':>7}{'undecided':>11}{'seconds':>9}{'examples/s':>12}")
    for name in args.claims or NAMES:
        if CLAIMS[name].available():
            print(f"{name:<14}  skipped: {CLAIMS[name].available()}")
            continue
        t0 = time.perf_counter()
        r = run_examples(name, args.seed, args.examples)
        dt = time.perf_counter() - t0
        print(f"{name:<14}{r['examples']:>9}{r['ok']:>7}{r['undecided']:>11}{dt:>9.1f}{r['examples'] / dt:>12.1f}"
              + (f"   FAILURES: {len(r['failures'])}" if r["failures"] else ""))
    if args.self_test:
        from verify.fuzz.mutants import self_test
        t0 = time.perf_counter()
        res = self_test(200, args.seed)
        print(f"self-test: {sum(r['killed'] for r in res)}/{len(res)} mutants killed in "
              f"{time.perf_counter() - t0:.1f}s, {sum(r['examples'] for r in res)} examples")


if __name__ == "__main__":
    main()
