"""Three shortcuts in the ledger's boto3 client for requests already in DynamoDB's wire form
(D102, D124): botocore's per-call work that cannot change their answer, done once or not at all;
and one in making it (D121): botocore's loader checks a service's name against a listing of
every service it has data for, built by reading ≈ 400 directories.

- The body: botocore's JSON serializer walks every value against the service model to build
  the dict it then `json.dumps`. The ledger's requests are already that dict (DynamoDB JSON
  whose values are strings, booleans, lists and maps), so the walk is an expensive copy:
  `json.dumps` of the parameters is the same bytes. What the walk would change — bytes (base64),
  datetimes, Decimals — makes `json.dumps` raise, and botocore's serializer takes that request.
- The endpoint: the endpoint rules are evaluated on every call, with a JMESPath search over a
  transaction's items (`ResourceArnList`) though only their table names matter. The ledger's
  client talks to one table; the endpoint is resolved once per operation and table names.
- The answer (D124): botocore's JSON parser walks every attribute value of an answer against the
  service model (a reserve's `ALL_NEW` counter item, a query's page) to build the dict
  `json.loads` already gives: DynamoDB JSON keeps numbers as strings. Only binaries differ
  (botocore decodes their base64), so an answer with a `B`/`BS` value, an error and any other
  operation go to botocore's parser; the `ResponseMetadata` is built as botocore builds it.

All three are checked byte for byte against botocore's own results (tests/unit/test_lean_client.py);
where botocore's internals are not what this expects, the client is left as it is.
"""

from __future__ import annotations

import json
import os
from typing import Any, TypeVar

from botocore.context import get_context
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader, instance_cache
from botocore.parsers import ResponseParserFactory
from botocore.serialize import JSONSerializer
from botocore.utils import lowercase_dict
from botocore.validate import ParamValidationDecorator

C = TypeVar("C")

WIRE_OPERATIONS = frozenset(
    {
        "BatchGetItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "TransactWriteItems",
        "UpdateItem",
    }
)
"""Operations whose input has no timestamps, floats or documents: only attribute values'
bytes (`B`, `BS`) would serialize differently, and bytes make `json.dumps` fall back."""
WIRE_OUTPUTS = frozenset(f"{name}Output" for name in WIRE_OPERATIONS)
"""Their answers' shapes: no timestamps either; numbers are strings, binaries base64 text."""
BINARY = (b'"B":', b'"BS":')


class WireSerializer:
    """botocore's JSON serializer, but a wire-form request is dumped as it is."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def serialize_to_request(self, parameters: dict[str, Any], operation_model: Any) -> Any:
        if operation_model.name not in WIRE_OPERATIONS:
            return self._inner.serialize_to_request(parameters, operation_model)
        try:
            body = json.dumps(parameters)
        except TypeError:  # bytes, datetimes, Decimals: botocore's serializer knows them
            return self._inner.serialize_to_request(parameters, operation_model)
        metadata = operation_model.metadata
        return {
            "url_path": "/",
            "query_string": "",
            "method": operation_model.http.get("method", "POST"),
            "headers": {
                "X-Amz-Target": f"{metadata['targetPrefix']}.{operation_model.name}",
                "Content-Type": f"application/x-amz-json-{metadata['jsonVersion']}",
            },
            "body": body.encode("utf-8"),
        }


def _tables(operation: str, params: dict[str, Any]) -> tuple[str, ...] | None:
    """The table names an endpoint rule can see in a request (None: not known here)."""
    if "TableName" in params:
        return (params["TableName"],)
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return tuple(
            body.get("TableName", "") for item in params["TransactItems"] for body in item.values()
        )
    if operation == "BatchGetItem":
        return tuple(params["RequestItems"])
    return None


class MemoEndpoints:
    """The client's endpoint ruleset resolver, remembering each (operation, tables)'s answer
    and the user-agent features resolving it registered (registered again on each use)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._known: dict[tuple[str, tuple[str, ...]], tuple[Any, frozenset[str]]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def construct_endpoint(self, operation_model: Any, call_args: Any, request_context: Any) -> Any:
        tables = _tables(operation_model.name, call_args or {})
        if tables is None:
            return self._inner.construct_endpoint(operation_model, call_args, request_context)
        key = (operation_model.name, tables)
        context = get_context()
        known = self._known.get(key)
        if known is None:
            before = set(context.features) if context is not None else set()
            endpoint = self._inner.construct_endpoint(operation_model, call_args, request_context)
            features = frozenset(context.features - before) if context is not None else frozenset()
            self._known[key] = known = endpoint, features
        endpoint, features = known
        if context is not None:
            context.features.update(features)
        return endpoint._replace(headers=dict(endpoint.headers))


class WireAnswers:
    """A response parser factory whose parsers take a wire operation's 200 answer as it is."""

    def __init__(self, inner: ResponseParserFactory) -> None:
        self._inner = inner
        self._parsers: dict[str, WireParser] = {}

    def create_parser(self, protocol: str) -> Any:
        parser = self._parsers.get(protocol)
        if parser is None:
            parser = self._parsers[protocol] = WireParser(self._inner, protocol)
        return parser


class WireParser:
    """`json.loads` for a 200 answer of a wire operation without binaries, botocore's parser
    (a new one each time, as botocore makes them) for everything else."""

    def __init__(self, factory: ResponseParserFactory, protocol: str) -> None:
        self._factory = factory
        self._protocol = protocol

    def parse(self, response: dict[str, Any], shape: Any) -> Any:
        body = response["body"]
        if (
            response["status_code"] != 200
            or shape is None
            or shape.name not in WIRE_OUTPUTS
            or any(marker in body for marker in BINARY)
        ):
            return self._factory.create_parser(self._protocol).parse(response, shape)
        parsed = json.loads(body) if body else {}
        headers = response["headers"]
        metadata: dict[str, Any] = {}
        if "x-amzn-requestid" in headers:
            metadata["RequestId"] = headers["x-amzn-requestid"]
        metadata["HTTPStatusCode"] = 200
        metadata["HTTPHeaders"] = lowercase_dict(headers)
        algorithm = response.get("context", {}).get("checksum", {}).get("response_algorithm")
        if algorithm:
            metadata["ChecksumAlgorithm"] = algorithm
        parsed["ResponseMetadata"] = metadata
        return parsed


def lean(client: C) -> C:
    """`client` with the three shortcuts, if its botocore is the one they were written against."""
    # With client-side validation on (a default client), botocore's serializer sits inside a
    # validating decorator: validation stays, only the serializer under it is replaced.
    outer = getattr(client, "_serializer", None)
    holder: Any = outer if isinstance(outer, ParamValidationDecorator) else client
    serializer = getattr(holder, "_serializer", None)
    resolver = getattr(client, "_ruleset_resolver", None)
    if not isinstance(serializer, JSONSerializer) or resolver is None:
        return client
    endpoint = getattr(client, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    if not isinstance(factory, ResponseParserFactory):
        return client
    holder._serializer = WireSerializer(serializer)
    setattr(client, "_ruleset_resolver", MemoEndpoints(resolver))  # noqa: B010
    endpoint._response_parser_factory = WireAnswers(factory)  # type: ignore[union-attr]
    return client


class KnownServiceLoader(Loader):
    """botocore's loader, but the model of a service it has data for is loaded without listing
    every service first. botocore's `load_service_model` lists all ≈ 400 service directories
    of its search path (a directory listing and file checks each, once per model type: a
    client loads two) only to refuse a name it does not know: ≈ 20–40 ms of a cold start.
    Here the service's own versions are listed, as botocore lists them to pick the latest; a
    name without data goes to botocore's path, which refuses it with botocore's error."""

    @instance_cache
    def load_service_model(
        self, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        try:
            versions = self.list_api_versions(service_name, type_name)
        except DataNotFoundError:
            return super().load_service_model(service_name, type_name, api_version)
        version = api_version if api_version is not None else max(versions)
        model = self.load_data(os.path.join(service_name, version, type_name))
        botocore: Any = self  # the rest is botocore's own, as it does it
        extras = botocore._find_extras(service_name, type_name, version)
        botocore._extras_processor.process(model, extras)
        return model


def known_services(session: Any) -> None:
    """`session`'s loader (a boto3 or botocore session's, shared by its clients) made a
    KnownServiceLoader, if it is botocore's own `Loader` with the parts this one uses."""
    botocore_session = getattr(session, "_session", session)
    loader = botocore_session.get_component("data_loader")
    if type(loader) is Loader and all(
        hasattr(loader, part) for part in ("_find_extras", "_extras_processor", "_cache")
    ):
        loader.__class__ = KnownServiceLoader
