"""Build `shared/costguard/pricing/catalog.json` from LiteLLM's price map, the reviewed overrides
and the sandbox tiers. Pure: the same inputs give the same bytes (a test holds us to it).

Rates are kept as the source states them (per token there, per million tokens here, as exact
decimal strings); what a source leaves out is filled when the catalog is read
(`costguard.pricing`), so the file stays a faithful copy of its sources plus the overrides.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

TIERS = {"standard": "", "batch": "_batches", "flex": "_flex", "priority": "_priority"}
"""Service tier → the suffix LiteLLM gives its rate keys."""

COMPONENTS = {
    "input": ("input_cost_per_token",),
    "output": ("output_cost_per_token",),
    "cached_input": ("cache_read_input_token_cost",),
    "cache_write": ("cache_creation_input_token_cost",),
    # the long-retention write: Anthropic's 1-hour cache, OpenAI's 12-hour one
    "cache_write_1h": (
        "cache_creation_input_token_cost_above_1hr",
        "cache_creation_input_token_cost_above_12hr",
    ),
    "reasoning": ("output_cost_per_reasoning_token",),
}
"""costguard's rate name → LiteLLM's per-token keys, first present wins (before threshold and
tier suffixes)."""


def _pick(entry: dict[str, Any], keys: tuple[str, ...], suffix: str) -> str | None:
    for key in keys:
        value = entry.get(key + suffix)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return per_million(value)
    return None


MODES = frozenset({"chat", "responses", "completion"})
ABOVE = re.compile(r"_above_(\d+)k_tokens")
PROVIDER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
RENAMED = {
    "gemini": "google",
    "bedrock_converse": "bedrock",
    "text-completion-openai": "openai",
    "text-completion-codestral": "codestral",
}
"""LiteLLM provider names that costguard spells as the vendor does (`vertex_ai-*` → vertex_ai)."""


def provider_of(litellm_provider: str) -> str:
    if litellm_provider.startswith("vertex_ai"):
        return "vertex_ai"
    return RENAMED.get(litellm_provider, litellm_provider)


def model_of(key: str, litellm_provider: str, provider: str) -> str:
    """The model as it is sent to the provider: LiteLLM's routing prefix removed."""
    prefixes = {litellm_provider, provider, "vertex_ai" if provider == "vertex_ai" else ""}
    prefixes |= {"bedrock"} if provider == "bedrock" else set()
    prefixes |= {"gemini"} if provider == "google" else set()
    for prefix in sorted(p for p in prefixes if p):
        if key.startswith(f"{prefix}/"):
            return key[len(prefix) + 1 :]
    return key


def per_million(value: Any) -> str:
    """A per-token figure as an exact per-million decimal string (floats read by their repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a rate: {value!r}")
    exact = Decimal(repr(value) if isinstance(value, float) else str(value)).scaleb(6)
    return format(exact.normalize(), "f")


def _rates(entry: dict[str, Any], suffix: str) -> dict[str, Any]:
    base = {name: rate for name, keys in COMPONENTS.items() if (rate := _pick(entry, keys, suffix))}
    thresholds = sorted({int(m.group(1)) for k in entry for m in [ABOVE.search(k)] if m})
    above: dict[str, dict[str, str]] = {}
    for n in thresholds:
        band = {
            name: rate
            for name, keys in COMPONENTS.items()
            if (rate := _pick(entry, keys, f"_above_{n}k_tokens{suffix}"))
        }
        if "input" in band or "output" in band:
            above[str(n * 1000)] = band
    return base | ({"above": above} if above else {})


def _tiered(entry: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's `tiered_pricing` ranges (e.g. Qwen): the first range is the base, each later
    range starts a band that prices the whole request."""
    ranges = sorted(entry["tiered_pricing"], key=lambda r: r["range"][0])
    base: dict[str, Any] = {}
    above: dict[str, dict[str, str]] = {}
    for r in ranges:
        rates = {name: rate for name, keys in COMPONENTS.items() if (rate := _pick(r, keys, ""))}
        start = int(r["range"][0])
        if start == 0:
            base = rates
        else:
            above[str(start)] = rates
    return base | ({"above": above} if above else {})


def schedule(entry: dict[str, Any]) -> dict[str, Any] | None:
    """costguard's price schedule for one LiteLLM entry, or None when it is not priced per token."""
    if isinstance(entry.get("tiered_pricing"), list) and entry["tiered_pricing"]:
        rates: dict[str, Any] = {"standard": _tiered(entry)}
    else:
        rates = {tier: r for tier, suffix in TIERS.items() if (r := _rates(entry, suffix))}
    standard = rates.get("standard", {})
    if "input" not in standard or "output" not in standard:
        return None
    request = entry.get("input_cost_per_request")
    request_usd = str(Decimal(repr(request))) if isinstance(request, float | int) else None
    if Decimal(standard["input"]) == 0 and Decimal(standard["output"]) == 0 and not request_usd:
        return None  # free or self-hosted (ollama, …): no list price to enforce
    out: dict[str, Any] = {"rates": rates}
    if request_usd and Decimal(request_usd) > 0:
        out["request_usd"] = request_usd
    for limit in ("max_output_tokens", "max_input_tokens"):
        value = entry.get(limit)
        out[limit] = value if isinstance(value, int) and not isinstance(value, bool) else None
    return out


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = value


PAYLOAD = ("rates", "request_usd", "max_output_tokens", "max_input_tokens")


def generate(
    price_map: dict[str, Any],
    config: dict[str, Any],
    overrides: dict[str, Any],
    sandbox: dict[str, Any],
    previous: dict[str, Any] | None = None,
) -> str:
    """The catalog's text. `previous` (the committed catalog) keeps history: an entry whose
    prices did not change keeps its effective date; a changed one is added from
    `config["effective_from"]` and the older one stays, so past records re-price as billed."""
    pin = f"{config['package']}=={config['version']}"
    since = config["effective_from"]
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for key in sorted(price_map):
        entry = price_map[key]
        if not isinstance(entry, dict) or entry.get("mode") not in MODES:
            continue
        litellm_provider = entry.get("litellm_provider")
        if not isinstance(litellm_provider, str):
            continue
        provider = provider_of(litellm_provider)
        model = model_of(key, litellm_provider, provider)
        if not PROVIDER.match(provider) or not MODEL.match(model):
            continue
        priced = schedule(entry)
        if priced is None or (provider, model) in current:
            continue
        current[(provider, model)] = {
            "provider": provider,
            "model": model,
            "source": f"{pin}:{key}",
            **priced,
        }
    for o in overrides["overrides"]:
        name = (o["provider"], o["model"])
        entry = current.setdefault(
            name,
            {"provider": o["provider"], "model": o["model"], "source": "prices/overrides.json"},
        )
        _merge(entry, o["patch"])
        entry["override"] = {"reason": o["reason"], "source": o["source"]}
    for entry in current.values():
        missing = [k for k in ("rates", "max_output_tokens") if k not in entry]
        if missing:
            raise ValueError(f"{entry['provider']}/{entry['model']}: no {missing} after overrides")

    history: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for old in (previous or {}).get("models", []):
        history.setdefault((old["provider"], old["model"]), []).append(old)
    models: list[dict[str, Any]] = []
    for name in sorted(set(current) | set(history)):
        past = sorted(history.get(name, []), key=lambda e: e["effective_from"])
        new = current.get(name)
        if new is None:
            models.extend(past)  # gone from the map: kept, so past records still price
            continue
        last = past[-1] if past else None
        if last is not None and all(last.get(k) == new.get(k) for k in PAYLOAD):
            new = {**new, "effective_from": last["effective_from"]}
            past = past[:-1]
        else:
            new = {**new, "effective_from": since}
            past = [e for e in past if e["effective_from"] != since]
        models.extend([*past, new])

    header = {
        "catalog": "costguard prices per model and sandbox tier; generated by `make prices`",
        "generated_from": {k: config[k] for k in ("package", "version", "file", "sha256")},
        "overrides": "prices/overrides.json",
        "units": "rates in USD per million tokens; request_usd per request; sandbox per second",
    }
    # One model per line, provider and model first: the runtime indexes the lines without
    # parsing them and parses a line only when its model is priced (cold start).
    lines = [
        json.dumps(
            {"provider": m["provider"], "model": m["model"]}
            | {k: m[k] for k in sorted(m) if k not in ("provider", "model")},
            ensure_ascii=False,
        )
        for m in models
    ]
    tiers = [json.dumps(t, sort_keys=True, ensure_ascii=False) for t in sandbox["sandbox_tiers"]]
    head = json.dumps(header, sort_keys=True, indent=1, ensure_ascii=False)[:-2]
    return (
        head
        + ',\n "models": [\n'
        + ",\n".join(lines)
        + '\n ],\n "sandbox_tiers": [\n'
        + ",\n".join(tiers)
        + "\n ]\n}\n"
    )
