"""The benchmark as a judge from outside: its own traffic, its own reading of the namespace, its own
verdict. Nothing here imports the operator; the operator is a process the benchmark starts and whose
Incidents it reads like any other object.

| module | does |
| --- | --- |
| `settings.py` | the benchmark's knobs: SLO, windows, timeouts, control length |
| `slo.py` | pure: window statistics of the benchmark's own requests (error ratio, P95, orders), the SLO |
| `objects.py` | pure: a reading of the namespace (Snapshot), what in an object counts as its state |
| `collateral.py` | pure: what changed between two readings, who wrote it (managedFields), Incident actions |
| `oracle.py` | pure: the verdict of one run (healed, TTD, TTM, diagnosis, collateral) and of a control run |
| `summary.py` | pure: per case and overall statistics; the text and Markdown tables |
| `policy.py` | pure: planner policies: the operator's env per policy, model figures from Incidents, the policy table |
| `cases.py` | the fault catalogue: inject, effect-gone check, faulty objects, expected healing, cleanup |
| `kube.py` | kubectl (the project's binary): reads, patches, deletes, restores from a baseline |
| `podnet.py` | HTTP to pods from inside the node's network namespace (setns on one thread) |
| `traffic.py` | the benchmark's shoppers through the gateway's published port on 127.0.0.1 |
| `runner.py` | the cluster, the shop, the operator process, the runs, the control, the cleanup |
"""
