"""The ledger client's shortcuts (D102) send what botocore would have sent, byte for byte."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from costguard.ledger import Ledger, LedgerTable, make_client
from costguard.models import Usage
from costguard.quotas import QuotaDefinition, QuotaId
from costguard.settings import Settings
from costguard.store.lean import MemoEndpoints, WireAnswers, WireParser, WireSerializer, lean

from tests.conftest import Clock

TABLE = "costguard-test"


def _client() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def _ledger_requests(ledger: Ledger, client: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every request the ledger sends for a tenant's life: quotas, reserves (in the item and
    by transaction), commits, a release, a direct record, reads."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, params))

    client.meta.events.register("before-parameter-build.dynamodb", capture)
    ledger.create_tenant("acme", "Acme", "pro")
    ledger.put_quota("acme", QuotaDefinition(QuotaId.parse("tenant:llm:month"), Decimal(100)))
    for _ in range(2):  # the counter's first hold by transaction, then one in the item
        held = ledger.reserve("acme", Usage(resource="llm", estimated_cost_usd="0.5"))
        ledger.commit("acme", held.reservation_id, Usage(resource="llm", cost_usd="0.25"))
    ledger.put_quota(None, QuotaDefinition(QuotaId.parse("platform:all:month"), Decimal(900)))
    user = ledger.reserve("acme", Usage(resource="llm", estimated_cost_usd="0.5", user_id="u-1"))
    ledger.release("acme", user.reservation_id)
    ledger.record_usage("acme", Usage(resource="llm", cost_usd="0.1"), idempotency_key="k-1")
    ledger.commit(
        "acme",
        ledger.reserve("acme", Usage(resource="llm", estimated_cost_usd="1")).reservation_id,
        None,
    )
    ledger.quotas("acme")
    ledger.reconcile("acme")
    client.meta.events.unregister("before-parameter-build.dynamodb", capture)
    return sent


def test_the_ledgers_requests_are_serialized_as_botocore_serializes_them(
    moto_client: Any, settings: Settings, clock: Clock
) -> None:
    # Given every request a tenant's life sends, on the lean client (the fixture's)
    ledger = Ledger(LedgerTable(moto_client, TABLE, settings), settings, clock=clock)
    sent = _ledger_requests(ledger, moto_client)
    operations = {name for name, _ in sent}
    assert {"UpdateItem", "TransactWriteItems", "GetItem", "Query"} <= operations
    botocore_serializer = _client()._serializer
    lean_serializer = moto_client._serializer._serializer  # under the validating decorator
    assert isinstance(lean_serializer, WireSerializer)
    model = moto_client.meta.service_model
    for name, params in sent:
        # When each is serialized by both
        operation = model.operation_model(name)
        # Then the request is the same, body byte for byte
        assert lean_serializer.serialize_to_request(
            params, operation
        ) == botocore_serializer.serialize_to_request(params, operation), name


def test_the_ledgers_answers_are_parsed_as_botocore_parses_them(
    moto_client: Any, settings: Settings, clock: Clock
) -> None:
    # Given every answer a tenant's life receives (moto answers over botocore's HTTP path)
    answers: list[tuple[str, dict[str, Any], Any]] = []

    def capture(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        answers.append((operation_model.name, dict(response_dict), operation_model.output_shape))

    moto_client.meta.events.register("before-parse.dynamodb", capture)
    ledger = Ledger(LedgerTable(moto_client, TABLE, settings), settings, clock=clock)
    _ledger_requests(ledger, moto_client)
    moto_client.meta.events.unregister("before-parse.dynamodb", capture)
    assert isinstance(moto_client._endpoint._response_parser_factory, WireAnswers)
    operations = {name for name, response, _ in answers if response["status_code"] == 200}
    assert {"UpdateItem", "TransactWriteItems", "GetItem", "Query"} <= operations
    assert any(b'"Attributes"' in response["body"] for _, response, _ in answers)  # ALL_NEW
    assert any(response["status_code"] == 400 for _, response, _ in answers)  # a refused write
    lean_parser = moto_client._endpoint._response_parser_factory.create_parser("json")
    assert isinstance(lean_parser, WireParser)
    for name, response, shape in answers:
        # When each is parsed by both
        expected = _client()._endpoint._response_parser_factory.create_parser("json")
        # Then the answer is the same, its metadata included
        assert lean_parser.parse(response, shape) == expected.parse(response, shape), name


@pytest.mark.parametrize(
    "body",
    [
        b'{"Attributes": {"pk": {"S": "a"}, "blob": {"B": "AAE="}}}',
        b'{"Attributes": {"pk": {"S": "a"}, "blobs": {"BS": ["AAE="]}}}',
    ],
)
def test_an_answer_with_binaries_is_left_to_botocore(body: bytes) -> None:
    # Given an UpdateItem answer holding a binary value
    client = lean(_client())
    shape = client.meta.service_model.operation_model("UpdateItem").output_shape
    response = {"status_code": 200, "headers": {"x-amzn-requestid": "r"}, "body": body}
    # When the lean client parses it, Then it is botocore's answer: the base64 decoded
    parsed = client._endpoint._response_parser_factory.create_parser("json").parse(response, shape)
    expected = _client()._endpoint._response_parser_factory.create_parser("json")
    assert parsed == expected.parse(response, shape)
    value = parsed["Attributes"].get("blob", {}).get("B") or parsed["Attributes"]["blobs"]["BS"][0]
    assert value == b"\x00\x01"


def test_what_json_cannot_write_is_left_to_botocore() -> None:
    # Given a PutItem with a binary attribute and a Query with a Decimal-typed limit
    client = lean(_client())
    put = {"TableName": TABLE, "Item": {"pk": {"S": "a"}, "blob": {"B": b"\x00\x01"}}}
    operation = client.meta.service_model.operation_model("PutItem")
    # When serialized by the lean client, Then it is botocore's (base64) request
    assert client._serializer.serialize_to_request(put, operation) == (
        _client()._serializer.serialize_to_request(put, operation)
    )
    assert b'"B": "AAE="' in client._serializer.serialize_to_request(put, operation)["body"]
    assert isinstance(client._serializer._serializer, WireSerializer)


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        (
            "UpdateItem",
            {"TableName": TABLE, "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}},
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "a"}}}},
                    {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "b"}}}},
                ],
                "ClientRequestToken": "t",
            },
        ),
        ("BatchGetItem", {"RequestItems": {TABLE: {"Keys": [{"pk": {"S": "a"}}]}}}),
        ("ListTables", {}),
    ],
)
def test_a_remembered_endpoint_is_the_one_botocore_resolves(
    operation: str, params: dict[str, Any]
) -> None:
    # Given the lean client and a plain one
    client, plain = lean(_client()), _client()
    model = client.meta.service_model.operation_model(operation)
    assert isinstance(client._ruleset_resolver, MemoEndpoints)
    # When an endpoint is resolved twice (the second from memory)
    expected = plain._ruleset_resolver.construct_endpoint(model, params, {})
    for _ in range(2):
        got = client._ruleset_resolver.construct_endpoint(model, params, {})
        # Then it is botocore's answer
        assert (got.url, got.headers, got.properties) == (
            expected.url,
            expected.headers,
            expected.properties,
        )


def test_the_production_client_is_lean_and_answers() -> None:
    # Given the production factory's client, answered by a canned response
    client = make_client(Settings(table_name=TABLE))
    assert isinstance(client._serializer, WireSerializer)
    seen: list[bytes] = []

    def answer(params: dict[str, Any], **_: Any) -> Any:
        seen.append(params["body"])
        return AWSResponse("https://dynamodb", 200, {}, None), {}  # type: ignore[arg-type]

    client.meta.events.register_first("before-call.dynamodb", answer)
    # When it sends an UpdateItem
    client.update_item(TableName=TABLE, Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
    # Then the body is the parameters as JSON
    assert seen == [b'{"TableName": "costguard-test", "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}}']


SERVICE_MODELS = [
    ("dynamodb", "service-2", None),
    ("dynamodb", "endpoint-rule-set-1", None),
    ("dynamodb", "paginators-1", None),
    ("dynamodb", "waiters-2", None),
    ("dynamodb", "service-2", "2012-08-10"),
    ("sns", "service-2", None),
    ("events", "service-2", None),
    ("secretsmanager", "endpoint-rule-set-1", None),
    ("sqs", "service-2", None),
    ("sts", "service-2", None),
]


def _loaders() -> tuple[Any, Any]:
    """botocore's loader and a KnownServiceLoader, both as a fresh session makes them."""
    from botocore.session import get_session
    from costguard.store.lean import KnownServiceLoader, known_services

    theirs, session = get_session().get_component("data_loader"), get_session()
    known_services(session)
    ours = session.get_component("data_loader")
    assert type(ours) is KnownServiceLoader
    return theirs, ours


@pytest.mark.parametrize(("service", "kind", "version"), SERVICE_MODELS)
def test_a_known_service_loads_the_model_botocore_loads(
    service: str, kind: str, version: str | None
) -> None:
    # D121: the same model (extras merged in), without listing every service first
    theirs, ours = _loaders()
    listed: list[str] = []
    listing = ours.list_available_services

    def spy(kind: str) -> Any:
        listed.append(kind)
        return listing(kind)

    ours.list_available_services = spy
    assert ours.load_service_model(service, kind, version) == theirs.load_service_model(
        service, kind, version
    )
    assert listed == []


def test_an_unknown_service_is_refused_as_botocore_refuses_it() -> None:
    from botocore.exceptions import UnknownServiceError

    theirs, ours = _loaders()
    refusals = []
    for loader in (theirs, ours):
        with pytest.raises(UnknownServiceError) as refused:
            loader.load_service_model("dynamodbx", "service-2")
        refusals.append(str(refused.value))
    assert refusals[0] == refusals[1]


def test_the_ledgers_client_comes_from_the_default_session_with_a_known_service_loader(
    settings: Settings,
) -> None:
    from costguard.store.lean import KnownServiceLoader

    client = make_client(settings)
    assert boto3.DEFAULT_SESSION is not None
    loader = boto3.DEFAULT_SESSION._session.get_component("data_loader")
    assert type(loader) is KnownServiceLoader
    assert client.meta.service_model.service_name == "dynamodb"
    assert client.meta.region_name == boto3.DEFAULT_SESSION.region_name
