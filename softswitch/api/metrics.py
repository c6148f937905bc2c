"""``GET /metrics`` in the Prometheus text format.

Nearly everything is read from the switch's own counters when Prometheus scrapes (a
custom collector): nothing is counted per packet for the metrics' sake. The text is made
in the switch (`SwitchMetrics.text`, asked for through `softswitch.api.live.Live.metrics`
when the API runs in its own process): the counters live there, the text is a few
kilobytes (labels are tenants and trunks) and a scrape comes every few seconds, so moving
a snapshot of every counter over the control channel would cost the switch as much. Two figures only
exist per finished call and are kept here, fed by the switch's CDR listeners: trunk calls
by result and the MOS histogram. Labels are tenants and trunks, never calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from softswitch.api.context import ApiContext
from softswitch.api.deps import allowed
from softswitch.api.errors import COMMON_ERRORS
from softswitch.api.roles import Area
from storage.cdr import Cdr

if TYPE_CHECKING:
    from softswitch.api.switchview import LiveSwitch

__all__ = ["SwitchMetrics", "router"]

MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.4)


class _SwitchCollector(Collector):
    def __init__(self, switch: LiveSwitch) -> None:
        self.switch = switch

    def collect(self) -> Iterator[Metric]:
        sw = self.switch
        counters = sw.counters
        received = CounterMetricFamily(
            "softswitch_sip_requests_received",
            "SIP requests received, by method",
            labels=["method"],
        )
        for method, count in sorted(getattr(counters, "requests_by_method", {}).items()):
            received.add_metric([method], count)
        yield received
        responses_in = CounterMetricFamily(
            "softswitch_sip_responses_received",
            "SIP responses received, by class (1xx..6xx)",
            labels=["class"],
        )
        for klass, count in sorted(getattr(counters, "responses_by_class", {}).items()):
            responses_in.add_metric([f"{klass}xx"], count)
        yield responses_in
        responses_out = CounterMetricFamily(
            "softswitch_sip_responses_sent",
            "SIP responses the switch core answered with (registrar, OPTIONS, refusals), by class",
            labels=["class"],
        )
        by_class: dict[int, int] = {}
        for status, count in counters.responses_by_status.items():
            by_class[status // 100] = by_class.get(status // 100, 0) + count
        for klass, count in sorted(by_class.items()):
            responses_out.add_metric([f"{klass}xx"], count)
        yield responses_out
        yield CounterMetricFamily(
            "softswitch_sip_messages_malformed",
            "SIP messages refused as unparseable or invalid",
            value=counters.malformed,
        )
        yield GaugeMetricFamily(
            "softswitch_sip_transactions", "live SIP transactions", value=len(sw.transactions)
        )
        overload = sw.overload.counters
        yield CounterMetricFamily(
            "softswitch_overload_rejected",
            "new calls answered 503 because the switch was overloaded",
            value=overload.get("shed", 0),
        )
        guard = getattr(sw, "guard", None)  # softswitch/security: bans, alarms, toll fraud
        if guard is not None:
            security = CounterMetricFamily(
                "softswitch_security_events",
                "security events by kind: bans, dropped requests, alarms, toll-fraud refusals "
                "(calls_refused_permission, calls_refused_cap), emergency calls",
                labels=["event"],
            )
            for key, value in sorted(guard.counters.items()):
                security.add_metric([key], value)
            yield security
        yield from self._registrations()
        yield from self._calls()
        yield from self._media()

    def _registrations(self) -> Iterator[Metric]:
        sw = self.switch
        domains = {t.domain: t.name for t in sw.config.tenants}
        counts = dict.fromkeys(domains.values(), 0)
        for binding in sw.location.all_bindings():
            tenant = domains.get(binding.aor.rpartition("@")[2].lower())
            if tenant is not None:
                counts[tenant] += 1
        family = GaugeMetricFamily(
            "softswitch_registrations", "registered contacts, by tenant", labels=["tenant"]
        )
        for tenant, count in sorted(counts.items()):
            family.add_metric([tenant], count)
        yield family

    def _calls(self) -> Iterator[Metric]:
        mgr = self.switch.calls
        family = GaugeMetricFamily(
            "softswitch_calls",
            "calls in progress by tenant and state (setup: not answered yet)",
            labels=["tenant", "state"],
        )
        counts = {(t.name, s): 0 for t in self.switch.config.tenants for s in ("setup", "active")}
        if mgr is not None:
            for call in mgr.calls.values():
                state = "active" if call.state.value == "answered" else "setup"
                counts[(call.tenant, state)] = counts.get((call.tenant, state), 0) + 1
        for (tenant, state), count in sorted(counts.items()):
            family.add_metric([tenant, state], count)
        yield family
        totals = mgr.counters if mgr is not None else {}
        for key, help_text in (
            ("calls", "calls started (rate() of it: calls per second)"),
            ("answered", "calls answered"),
            ("rejected", "calls refused (authentication, routing)"),
            ("over_limit", "calls refused by a tenant's or trunk's limits"),
        ):
            name = "softswitch_calls_started" if key == "calls" else f"softswitch_calls_{key}"
            yield CounterMetricFamily(name, help_text, value=totals.get(key, 0))

    def _media(self) -> Iterator[Metric]:
        media = self.switch.media
        if media is None:
            return
        stats = media.stats()
        yield CounterMetricFamily(
            "softswitch_media_ticks", "media engine frame ticks (20 ms)", value=stats.ticks
        )
        yield CounterMetricFamily(
            "softswitch_media_late_ticks",
            "media engine ticks that ran late",
            value=stats.late_ticks,
        )
        yield CounterMetricFamily(
            "softswitch_media_busy_seconds",
            "seconds the media engine spent working (rate(): its load)",
            value=stats.busy_seconds,
        )
        yield GaugeMetricFamily(
            "softswitch_media_endpoints", "media endpoints open", value=stats.endpoints
        )


class SwitchMetrics:
    """The registry one API server exposes; ``observe_cdr`` is a CDR listener."""

    def __init__(self, switch: LiveSwitch) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SwitchCollector(switch))
        self.trunk_calls = Counter(
            "softswitch_trunk_calls",
            "calls through carrier trunks, by tenant, trunk, direction and result",
            ["tenant", "trunk", "direction", "result"],
            registry=self.registry,
        )
        self.mos = Histogram(
            "softswitch_call_mos",
            "MOS estimate of anchored calls (the worse side), by tenant and trunk",
            ["tenant", "trunk"],
            buckets=MOS_BUCKETS,
            registry=self.registry,
        )

    def observe_cdr(self, cdr: Cdr) -> None:
        if cdr.trunk:
            result = cdr.disposition.lower().replace(" ", "_")
            self.trunk_calls.labels(cdr.tenant, cdr.trunk, cdr.direction, result).inc()
        if cdr.mos is not None:
            self.mos.labels(cdr.tenant, cdr.trunk).observe(cdr.mos)

    def text(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **{k: v for k, v in COMMON_ERRORS.items() if k != 404},
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
    },
    tags=["metrics"],
)
async def metrics(
    request: Request, _principal: object = Depends(allowed(Area.METRICS, "r"))
) -> Response:
    """The switch's figures for Prometheus (operators' tokens: ``bearer_token``)."""
    ctx: ApiContext = request.app.state.ctx
    data = await ctx.live.metrics()
    return Response(content=data, media_type=CONTENT_TYPE_LATEST)
