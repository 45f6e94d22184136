"""`make bench-scenarios`: the project's benchmark, an AIOpsLab-style judge from outside.

For each case of the catalogue (bench/judge/cases.py: the ten FaultScenario types and fifteen faults
made with plain kubectl calls or at runtime inside a process), on a fresh local cluster with the shop
under the benchmark's own traffic and the operator running with its default settings:

- healed: the fault's effect gone (the case's check on the objects, every pod Ready and serving) and
  the benchmark's SLO (error ratio, P95, orders) held over a full window; never the Incident's phase;
- TTD: fault → first Incident (and the operator's own figure); TTM: fault → that healthy window;
- collateral: every object changed during the run that was neither at fault nor the expected fix;
- diagnosis: the first Incident's service against the faulty workload;
- a no-fault control first: every Incident or change in it is a false positive.

With `--planner` (and `--model`): the operator runs with that planner policy and, with a model, charts/llm
serves the provisioned GGUF in the bench cluster, reached by the operator on 127.0.0.1 (a NodePort
published like the shop's); each run records the model's calls, tokens and seconds, who diagnosed and
who planned (from the Incidents: cost and attribution, never the verdict) and the server's peak RSS.
`--policy-table` compares such runs, one row per policy.

Usage:
  python bench/scenarios.py [--runs N] [--case NAME ...] [--source kubectl|runtime|faultscenario]
                            [--control-minutes M] [--timeout S] [--out FILE]
                            [--planner rules|hybrid|llm] [--model 1.5b|0.5b]
  python bench/scenarios.py --list                      the catalogue
  python bench/scenarios.py --table FILE [--markdown]   the table of an earlier run's JSON
  python bench/scenarios.py --merge FILE... --out FILE [--markdown]
                                                        one report of several (a later file's runs of a
                                                        case replace an earlier's; the replaced are kept)
  python bench/scenarios.py --policy-table FILE... [--markdown]
                                                        one row per policy of earlier runs' JSON
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # run as a script: `bench` is this directory's package, not bench/bench.py
    sys.path[:] = [str(ROOT)] + [x for x in sys.path if Path(x or ".").resolve() != ROOT / "bench"]

from bench.judge import policy, summary  # noqa: E402 - after the path fix above
from bench.judge.cases import BY_NAME, CASES  # noqa: E402
from bench.judge.settings import SLO, Settings  # noqa: E402


def catalogue_markdown() -> str:
    lines = ["| case | source | how it is injected | effect gone when | expected healing |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.source} | {c.summary} | {c.check_doc} | {c.expected} |" for c in CASES]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/scenarios.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "1")))
    p.add_argument("--case", action="append", choices=sorted(BY_NAME), help="default: every case")
    p.add_argument("--source", choices=["faultscenario", "kubectl", "runtime"])
    p.add_argument("--control-minutes", type=float, default=float(os.environ.get("BENCH_CONTROL_MINUTES", "10")))
    p.add_argument("--timeout", type=float, help="seconds from the fault to healed, else the run fails")
    p.add_argument("--baseline", type=float, help="seconds of baseline with the operator on before the fault")
    p.add_argument("--window", type=float, help="seconds the SLO must hold to call the shop healed")
    p.add_argument("--out", default=str(ROOT / "bench" / "scenarios.json"))
    p.add_argument("--list", action="store_true", help="print the catalogue (Markdown) and exit")
    p.add_argument("--table", metavar="FILE", help="print the table of an earlier run's JSON and exit")
    p.add_argument("--markdown", action="store_true", help="with --table or --policy-table: Markdown tables")
    p.add_argument("--planner", choices=policy.PLANNERS,
                   help="the operator's planner policy (default: its own default, with no model: the rules)")
    p.add_argument("--model", choices=policy.MODELS,
                   help=f"the provisioned model charts/llm serves (hybrid and llm: {policy.DEFAULT_MODEL} if none)")
    p.add_argument("--merge", nargs="+", metavar="FILE",
                   help="one report (--out) of earlier reports: a later file's runs of a case replace an earlier's")
    p.add_argument("--policy-table", nargs="+", metavar="FILE",
                   help="print one row per policy of earlier runs' JSON (one file a policy) and exit")
    args = p.parse_args(argv)
    if args.list:
        print(catalogue_markdown())
        return 0
    if args.table:
        data = json.loads(Path(args.table).read_text())
        print(summary.markdown_table(data["summary"]) if args.markdown else summary.text_table(data["summary"]))
        return 0
    if args.merge:
        merged = summary.merge([json.loads(Path(f).read_text()) for f in args.merge], args.merge)
        Path(args.out).write_text(json.dumps(merged, indent=1, default=str) + "\n")
        print(summary.markdown_table(merged["summary"]) if args.markdown else summary.text_table(merged["summary"]))
        return 0
    if args.policy_table:
        reports = [json.loads(Path(f).read_text()) for f in args.policy_table]
        print(policy.render(reports, markdown=args.markdown))
        return 0
    pol = policy.Policy.of(args.planner, args.model)
    cases = [BY_NAME[n] for n in args.case] if args.case else [c for c in CASES if args.source in (None, c.source)]
    settings = Settings()
    if args.timeout:
        settings = dataclasses.replace(settings, timeout_seconds=args.timeout)
    if args.baseline:
        settings = dataclasses.replace(settings, baseline_seconds=args.baseline)
    if args.window:
        settings = dataclasses.replace(settings, slo=dataclasses.replace(SLO(), window_seconds=args.window))
    settings = dataclasses.replace(settings, control_minutes=args.control_minutes)

    from bench.judge import runner  # the cluster side: only when running
    from localkube import binaries, netns
    try:
        netns.require_root("the scenario benchmark")
        if pol.model:  # before a cluster is started for nothing
            runner.model_file(pol.model)
    except (netns.NotRoot, binaries.MissingBinary) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    report = runner.run(cases, args.runs, settings, args.control_minutes, pol,
                        checkpoint=out.with_name(out.stem + ".partial.json"))
    report["summary"] = summary.summarise(report["runs"], [c.name for c in cases], report["control"])
    report["catalogue"] = [{"case": c.name, "source": c.source, "origin": c.origin, "injected": c.summary,
                            "effectGone": c.check_doc, "expected": c.expected, "services": list(c.services),
                            "faulty": [f"{k}/{n}" for k, n in c.faulty]} for c in cases]
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(summary.text_table(report["summary"]))
    print()
    print(summary.markdown_table(report["summary"]))
    print()
    print(policy.render([report]))
    print(f"bench: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
