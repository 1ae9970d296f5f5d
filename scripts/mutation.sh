#!/usr/bin/env bash
# scripts/mutation.sh - mutation testing (mutmut) of the planner and the executor against the unit tests.
#
#   scripts/mutation.sh [safety|all|ci|GLOB…]   (default: safety)
#
#   safety  the safety-relevant modules: plan/drift.py, plan/planner.py, plan/resources.py, executor/apply.py
#           (~2,000 mutants; ~10 min with one worker on the 2-core test machine)
#   all     every module of reconciler/plan/ and reconciler/executor/ (~6,500 mutants; ~25 min)
#   ci      a small fixed subset of the safety paths — ownership, recreate order and restore, volume init,
#           the spec hash — against the safety unit tests only (in a scratch copy whose [tool.mutmut] selects
#           them), failing when its kill rate drops below MUTATION_MIN_RATE (default 90 %). Measured: 399
#           mutants, ~4 min on the shared 2-core machine, 98.2 %; scripts/test.sh runs it. The 7 survivors
#           are equivalent: `force` on removing a container just stopped (3), the `volumes` default of
#           `_remove` (every caller passes it), the tail length of an init's output (-400/-401), and
#           `json.dumps(default=str)` for values that are always JSON already (2)
#   GLOB…   mutmut mutant-name globs, e.g. 'reconciler.executor.apply.xǁExecutorǁ_recreate*'
#
# Only unit tests run (no engine; config in pyproject's [tool.mutmut]). The copy mutmut works in is
# `mutants/` (ignored by git), made afresh each run unless MUTATION_KEEP=1. Workers: MUTATION_JOBS (default 1,
# the machine is shared). Prints every surviving mutant (with its diff when MUTATION_DIFF=1) and the kill rate:
# killed (or timed out) / mutants run; a mutant no test reaches counts as a survivor.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${RECONCILER_VENV:-$PWD/.venv}"
mutmut="$venv/bin/mutmut"
[ -x "$mutmut" ] || { echo "mutmut is missing: $venv/bin/pip install 'mutmut>=3.3,<4' (a dev extra)" >&2; exit 2; }
export PYTHONPATH="$PWD"  # the copy in mutants/ must win over an editable install elsewhere

mode="${1:-safety}"
ci=0
case "$mode" in
    safety)
        globs=('reconciler.plan.drift.*' 'reconciler.plan.planner.*' 'reconciler.plan.resources.*'
               'reconciler.executor.apply.*') ;;
    all)
        globs=('reconciler.plan.*' 'reconciler.executor.*') ;;
    ci)
        ci=1
        globs=('reconciler.executor.apply.xǁExecutorǁ_remove__mutmut_*'
               'reconciler.executor.apply.xǁExecutorǁ_recreate__mutmut_*'
               'reconciler.executor.apply.xǁExecutorǁ_restore__mutmut_*'
               'reconciler.executor.apply.xǁExecutorǁ_run_init__mutmut_*'
               'reconciler.executor.apply.x__managed__mutmut_*'
               'reconciler.plan.drift.x_init_drift__mutmut_*'
               'reconciler.plan.planner.x__orphans__mutmut_*'
               'reconciler.plan.planner.x__ours__mutmut_*'
               'reconciler.plan.resources.x_canonical__mutmut_*'
               'reconciler.plan.resources.x__is_empty__mutmut_*') ;;
    *)
        globs=("$@") ;;
esac

if (( ci )); then
    # A scratch copy of the working tree whose mutmut config runs only the safety unit tests: fast enough for CI.
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$scratch"
    "$venv/bin/python" - "$scratch/pyproject.toml" <<'PY'
import sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
safety = ["tests/unit/test_executor_safety.py", "tests/unit/test_executor_paths.py", "tests/unit/test_executor.py",
          "tests/unit/test_executor_calls.py", "tests/unit/test_adopt.py",
          "tests/unit/test_planner_safety.py", "tests/unit/test_spec_hash.py", "tests/unit/test_spec_hash_edges.py"]
old = 'pytest_add_cli_args_test_selection = ["tests/unit"]'
assert old in text, "pyproject's [tool.mutmut] changed: update scripts/mutation.sh"
open(path, "w", encoding="utf-8").write(text.replace(old, f"pytest_add_cli_args_test_selection = {safety!r}"))
PY
    cd "$scratch"
    export PYTHONPATH="$PWD"
fi
[ "${MUTATION_KEEP:-0}" = 1 ] || rm -rf mutants
started=$(date +%s)
"$mutmut" run --max-children "${MUTATION_JOBS:-1}" "${globs[@]}" > mutants.log 2>&1 || {
    tail -n 40 mutants.log >&2; echo "mutmut failed (log: mutants.log)" >&2; exit 2; }
mv mutants.log mutants/run.log
"$mutmut" results --all true > mutants/results.txt
echo "== mutation testing ($mode) took $(( $(date +%s) - started )) s"
"$venv/bin/python" - "$ci" "${globs[@]}" <<'PY'
import fnmatch
import subprocess
import sys
import os

ci, globs = sys.argv[1] == "1", sys.argv[2:]
statuses: dict[str, str] = {}
for line in open("mutants/results.txt", encoding="utf-8"):
    name, _, status = line.strip().rpartition(": ")
    if name and any(fnmatch.fnmatchcase(name, g) for g in globs):
        statuses[name] = status
ran = {n: s for n, s in statuses.items() if s not in ("not checked", "skipped")}
killed = [n for n, s in ran.items() if s in ("killed", "timeout", "caught by type check")]
survivors = sorted(n for n in ran if n not in killed)
for name in survivors:
    print(f"SURVIVED ({ran[name]}): {name}")
    if os.environ.get("MUTATION_DIFF") == "1":
        diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], capture_output=True, text=True)
        print(diff.stdout)
by_module: dict[str, list[int]] = {}
for name in ran:
    module = name.split(".x", 1)[0]
    counts = by_module.setdefault(module, [0, 0])
    counts[0] += name in killed
    counts[1] += 1
for module, (k, n) in sorted(by_module.items()):
    print(f"  {module}: {k}/{n} killed ({100 * k / n:.1f} %)")
total = len(ran)
rate = 100 * len(killed) / total if total else 0.0
print(f"kill rate: {len(killed)}/{total} = {rate:.1f} % ({len(survivors)} surviving)")
if not total:
    sys.exit("no mutant ran: check the globs")
minimum = float(os.environ.get("MUTATION_MIN_RATE", "90"))
if ci and rate < minimum:
    sys.exit(f"the CI subset's kill rate {rate:.1f} % is below {minimum:g} %: add tests that kill the survivors")
PY
