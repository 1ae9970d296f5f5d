"""Plans for people: a readable table, grouped by wave, with the reasons behind every action.

Secret-looking environment values (PASSWORD, SECRET, TOKEN, KEY, …) are never printed, here or in JSON.
"""

from __future__ import annotations

from collections import Counter

from .planner import Plan


def render_plan(plan: Plan) -> str:
    if plan.in_sync and not plan.notes and not plan.pending:
        return "in sync: nothing to do"
    lines: list[str] = []
    for number, wave in enumerate(plan.waves, start=1):
        parallel = " (in parallel)" if len(wave) > 1 else ""
        lines.append(f"wave {number}{parallel}")
        for action in wave:
            lines.append(f"  {action.op.value:<9} {action.resource.kind.value:<12} {action.resource.name}")
            lines.extend(f"      {reason.describe()}" for reason in action.reasons[:12])
            if len(action.reasons) > 12:
                lines.append(f"      … and {len(action.reasons) - 12} more")
    if plan.blocked:
        lines.append("blocked (not touched)")
        lines.extend(f"  {b.resource.kind.value:<12} {b.resource.name}: {b.message}" for b in plan.blocked)
    if plan.notes:
        lines.append("notes")
        lines.extend(f"  {n.resource.kind.value:<12} {n.resource.name}: {n.message}" for n in plan.notes)
    if plan.pending:
        lines.append("pending updates (not applied)")
        lines.extend(f"  container    {p.resource.name}: {p.describe()}" for p in plan.pending)
    counts = Counter(a.op.value for a in plan.actions)
    summary = ", ".join(f"{n} to {op}" for op, n in sorted(counts.items()))
    extra = []
    if plan.blocked:
        extra.append(f"{len(plan.blocked)} blocked")
    if plan.notes:
        extra.append(f"{len(plan.notes)} notes")
    if plan.pending:
        extra.append(f"{len(plan.pending)} pending")
    lines.append("plan: " + ", ".join(x for x in [summary, *extra] if x))
    return "\n".join(lines)
