""" "Why did my phone not ring?": a form over ``route explain`` (the API's route function)
showing the decisions taken (disaster plan, DID treatment, answering rule and why), the
callflow tree with the branch the call takes marked, and that path in one line."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from softswitch.api import routes_routing
from softswitch.api.errors import ApiError
from softswitch.api.roles import Area
from softswitch.portal.frame import render, signed_in, tenant_scope

__all__ = ["TreeLine", "router", "tree_lines"]

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class TreeLine:
    """One node of the callflow tree: its depth, its text and whether the call takes it."""

    depth: int
    text: str
    taken: bool


def tree_lines(lines: list[str]) -> tuple[list[str], list[TreeLine], str]:
    """``route explain``'s lines split into (decisions, tree, path)."""
    decisions: list[str] = []
    tree: list[TreeLine] = []
    path = ""
    in_tree = False
    for line in lines:
        if line.startswith("callflow ("):
            in_tree = True  # the tree's own heading: the page has one
        elif line.startswith("path: "):
            path = line.removeprefix("path: ")
        elif in_tree:
            body = line.lstrip(" ")
            taken = body.startswith("* ")
            # "  " per level, then "* " (taken) or "  ": the root is at level one
            lead = len(line) - len(body) - (0 if taken else 2)
            depth = max(lead // 2 - 1, 0)
            tree.append(TreeLine(depth, body.removeprefix("* ").strip(), taken))
        else:
            decisions.append(line)
    return decisions, tree, path


@router.get("/t/{tenant}/explain", response_class=HTMLResponse)
async def explain_page(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.ROUTING, "r")
    q = request.query_params
    form = {k: q.get(k, "").strip() for k in ("to", "from", "at")}
    errors: dict[str, str] = {}
    result = None
    if form["to"] or "to" in q:
        at: dt.datetime | None = None
        if form["at"]:
            try:
                at = dt.datetime.fromisoformat(form["at"])
            except ValueError:
                errors["at"] = "a date and time as YYYY-MM-DDTHH:MM (UTC)"
        body = None
        if not errors:
            try:
                body = routes_routing.ExplainIn.model_validate(
                    {"to": form["to"], "from": form["from"], "at": at}
                )
            except ValidationError as exc:
                for e in exc.errors():
                    name = str(e["loc"][0]) if e["loc"] else "to"
                    errors.setdefault(name, e["msg"])
        if body is not None:
            try:
                answer = await routes_routing.route_explain(body, scope)
            except ApiError as exc:
                if exc.status != 403:
                    raise
                errors["to"] = exc.message
            else:
                decisions, tree, path = tree_lines(answer.decisions)
                result = {
                    "decisions": decisions,
                    "tree": tree,
                    "path": path,
                    "warnings": answer.warnings,
                    "disaster": answer.enabled_disaster_plans,
                    "internal": answer.internal,
                }
    return render(
        request,
        session,
        "explain.html",
        tenant,
        422 if errors else 200,
        form=form,
        errors=errors,
        result=result,
    )
