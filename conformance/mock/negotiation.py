"""FHIR content negotiation for the reference server: `_format` first, then Accept."""

from __future__ import annotations

from dataclasses import dataclass

FHIR_JSON = "application/fhir+json"
JSON_FORMATS = {"json", "application/json", "application/fhir+json", FHIR_JSON}
XML_FORMATS = {"xml", "text/xml", "application/xml", "application/fhir+xml"}
DSTU2_JSON = "application/json+fhir"


@dataclass(frozen=True)
class Choice:
    """Either a media type to answer with, or the status that refuses the request."""

    media_type: str | None
    refusal: int | None = None
    reason: str = ""


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str], float]]:
    ranges = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 1.0
        ranges.append((media, params, quality))
    return sorted(ranges, key=lambda r: -r[2])


def negotiate(format_param: str | None, accept: str | None, *, require_explicit_json: bool = False) -> Choice:
    """Pick the response type for a FHIR read, or say why the request is refused."""
    if format_param is not None:
        value = format_param.strip().lower()
        if value in JSON_FORMATS:
            return Choice("application/json" if value == "application/json" else FHIR_JSON)
        if value in XML_FORMATS:
            return Choice(None, 406, f"_format={format_param} asks for XML; this server produces JSON only")
        return Choice(None, 406, f"_format={format_param} is not a format this server knows")
    if not accept or not accept.strip():
        if require_explicit_json:
            return Choice(None, 406, "ask for JSON with Accept: application/fhir+json or ?_format=json")
        return Choice(FHIR_JSON)
    for media, params, quality in _media_ranges(accept):
        if quality <= 0:
            continue
        version = params.get("fhirversion")
        if version is not None and not version.startswith("4.0"):
            continue
        if media == FHIR_JSON:
            return Choice(FHIR_JSON)
        if media == "application/json":
            return Choice("application/json")
        if media == DSTU2_JSON:
            return Choice(FHIR_JSON)
        if media in ("*/*", "application/*") and not require_explicit_json:
            return Choice(FHIR_JSON)
    return Choice(None, 406, f"none of the types in Accept: {accept} can be produced; this server speaks JSON")
