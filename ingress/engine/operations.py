"""From a check request to its features: operation summaries and personal-data findings, in one pass.

The features are all a decision depends on, and they are what a ``DecisionEvent`` stores, so a stored event
replays to the same decision (``decide_from_features``). Summaries hold no personal data: a target keeps only its
host, and a summary field in which personal data is found is stored as ``<redacted>``.
"""

from __future__ import annotations

from typing import Final

from ingress.engine.personal_data import IP_ADDRESS, REDACTED_KEY, Scanner
from schemas.check import (
    CheckRequest,
    DataAccess,
    Embedding,
    ExternalCall,
    FileUpload,
    LlmCall,
    Operation as RequestOperation,
    ToolCall,
    UnknownOperation,
    split_target,
    target_host,
)
from schemas.decision_event import OperationSummary, PersonalDataFinding

# Providers that run inside the customer's boundary. Any other provider, or none, is external.
INTERNAL_PROVIDERS: Final = frozenset({"internal", "selfhosted", "local", "onprem", "onpremise", "private", "inhouse"})


def provider_is_internal(provider: str | None) -> bool:
    """``internal``, ``self-hosted``, ``local``, ``on-prem``… (case, spaces, dashes and underscores ignored)."""
    if provider is None:
        return False
    normalized = "".join(char for char in provider.lower() if char.isalnum())
    return normalized in INTERNAL_PROVIDERS


def _kept(value: str | None, path: str, scan: Scanner) -> str | None:
    """A free-text summary field as stored: the value, or ``<redacted>`` when it holds personal data."""
    if value is None:
        return None
    found = scan.categories(value, path)
    if not found:
        return value
    for category in found:
        scan.add(category, path)
    return REDACTED_KEY


def _host(target: str, path: str, scan: Scanner) -> str:
    """A target's host as stored: the host, or ``<redacted>`` when a label of it holds personal data (a card
    number as a subdomain). An IP address is a server's, not a person's: it is kept."""
    host = target_host(target)
    found = [category for category in scan.categories(host, path) if category != IP_ADDRESS] if host else []
    for category in found:
        scan.add(category, path)
    return REDACTED_KEY if found else host


def _scan_target(target: str, path: str, scan: Scanner) -> None:
    # The host is checked by _host; credentials, path, query and fragment may hold personal data too.
    try:
        parts = split_target(target)
    except ValueError:
        scan.scan(target, path)
        return
    rest = " ".join(part for part in (parts.username, parts.password, parts.path, parts.query, parts.fragment) if part)
    if rest:
        scan.scan(rest, path)


def analyze_operation(operation: RequestOperation, index: int, scan: Scanner) -> OperationSummary:
    """The summary of one operation; its personal data is added to ``scan``."""
    base = f"operations[{index}]"
    summary = _analyze(operation, index, base, scan)
    if not isinstance(operation, UnknownOperation) and operation.metadata is not None:
        scan.scan(operation.metadata, f"{base}.metadata")
    return summary


def _model_call(operation: LlmCall | Embedding, index: int, base: str, scan: Scanner) -> OperationSummary:
    """The summary of a call to a model (generation or embedding): model, provider, tokens, external or not."""
    return OperationSummary(
        index=index,
        type=operation.type,
        model=_kept(operation.model, f"{base}.model", scan),
        provider=_kept(operation.provider, f"{base}.provider", scan),
        tokens=operation.tokens,
        external=not provider_is_internal(operation.provider),
    )


def _llm_call(operation: LlmCall, index: int, base: str, scan: Scanner) -> OperationSummary:
    if operation.prompt is not None:
        scan.scan(operation.prompt, f"{base}.prompt")
    if operation.messages is not None:
        scan.scan(operation.messages, f"{base}.messages")
    return _model_call(operation, index, base, scan)


def _embedding(operation: Embedding, index: int, base: str, scan: Scanner) -> OperationSummary:
    if operation.input is not None:
        scan.scan(operation.input, f"{base}.input")
    return _model_call(operation, index, base, scan)


def _data_access(operation: DataAccess, index: int, base: str, scan: Scanner) -> OperationSummary:
    if operation.fields is not None:
        scan.scan_field_names(operation.fields, f"{base}.fields")
    if operation.purpose is not None:
        scan.scan(operation.purpose, f"{base}.purpose")
    if operation.query is not None:
        scan.scan(operation.query, f"{base}.query")
    return OperationSummary(
        index=index,
        type=operation.type,
        dataset=_kept(operation.dataset, f"{base}.dataset", scan),
        rows=operation.rows,
        bytes=operation.bytes,
    )


def _external_call(operation: ExternalCall, index: int, base: str, scan: Scanner) -> OperationSummary:
    _scan_target(operation.target, f"{base}.target", scan)
    if operation.payload is not None:
        scan.scan(operation.payload, f"{base}.payload")
    host = _host(operation.target, f"{base}.target", scan)
    return OperationSummary(index=index, type=operation.type, target=host, external=True)


def _tool_call(operation: ToolCall, index: int, base: str, scan: Scanner) -> OperationSummary:
    if operation.arguments is not None:
        scan.scan(operation.arguments, f"{base}.arguments")
    return OperationSummary(index=index, type=operation.type, target=_kept(operation.tool, f"{base}.tool", scan))


def _file_upload(operation: FileUpload, index: int, base: str, scan: Scanner) -> OperationSummary:
    _scan_target(operation.destination, f"{base}.destination", scan)
    if operation.filename is not None:
        scan.scan(operation.filename, f"{base}.filename")
    host = _host(operation.destination, f"{base}.destination", scan)
    return OperationSummary(index=index, type=operation.type, target=host, bytes=operation.bytes)


def _unknown(operation: UnknownOperation, index: int, base: str, scan: Scanner) -> OperationSummary:
    # Every field an unknown operation carries is payload.
    scan.scan(operation.attributes, base)
    kind = _kept(operation.type, f"{base}.type", scan)
    return OperationSummary(index=index, type=kind or operation.type, known_type=False)


def _analyze(operation: RequestOperation, index: int, base: str, scan: Scanner) -> OperationSummary:
    match operation:
        case LlmCall():
            summary = _llm_call(operation, index, base, scan)
        case Embedding():
            summary = _embedding(operation, index, base, scan)
        case DataAccess():
            summary = _data_access(operation, index, base, scan)
        case ExternalCall():
            summary = _external_call(operation, index, base, scan)
        case ToolCall():
            summary = _tool_call(operation, index, base, scan)
        case FileUpload():
            summary = _file_upload(operation, index, base, scan)
        case UnknownOperation():
            summary = _unknown(operation, index, base, scan)
    return summary


def analyze_request(request: CheckRequest) -> tuple[tuple[OperationSummary, ...], list[PersonalDataFinding]]:
    """Summaries of the operations and the personal data in the context and the operations, in one pass."""
    scan = Scanner()
    scan.scan(request.context, "context")
    summaries = tuple(analyze_operation(operation, index, scan) for index, operation in enumerate(request.operations))
    return summaries, scan.findings()


def summarize_operations(request: CheckRequest) -> tuple[OperationSummary, ...]:
    """The non-personal features of each operation, in request order."""
    scan = Scanner()
    return tuple(analyze_operation(operation, index, scan) for index, operation in enumerate(request.operations))
