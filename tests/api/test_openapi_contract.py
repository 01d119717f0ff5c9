"""The API contract: ``/openapi.json`` names every error code each route can answer with,
the bearer scheme on the routes that need a token, the required Idempotency-Key and the
reason codes.

The main check is static: from each route's endpoint and dependencies it follows the calls
into ``claims_api`` and collects the named errors (``NamedError`` subclasses) they can raise,
and each must be in the route's ``responses=``; building an ad-hoc ``ApiError`` on such a
path fails the test, so a code cannot reach a client without being documented."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from claims_api import errors as shared
from claims_api.config import Settings
from claims_api.deps import current_principal, get_db
from claims_api.errors import ApiError, NamedError
from claims_api.main import create_app
from claims_api.photos import imaging
from claims_api.photos.errors import PHOTO_REJECTIONS
from claims_api.rules import REASON_CODES

# the helpers that build an error with a code given at the call: not documentable
AD_HOC = {ApiError, shared.conflict, shared.not_found, shared.unprocessable}


@cache
def _app():
    return create_app(Settings())  # routes and schema only: no database is opened


@cache
def _schema() -> dict:
    return _app().openapi()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as mounted, the routers' prefixes included
    api_route: APIRoute = field(hash=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _api_routes() -> list[Route]:
    return [
        Route(sorted(context.methods)[0], context.path, context.original_route)
        for context in iter_route_contexts(_app().routes)
        if isinstance(context.original_route, APIRoute) and context.original_route.include_in_schema
    ]


def _operation(method: str, path: str) -> dict:
    return _schema()["paths"][path][method.lower()]


def documented(method: str, path: str) -> dict[int, set[str]]:
    """status → the error codes the route's schema lists for it."""
    found: dict[int, set[str]] = {}
    for status, response in _operation(method, path)["responses"].items():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        error = schema.get("properties", {}).get("error", {})
        codes = error.get("properties", {}).get("code", {}).get("enum")
        if codes is not None:
            found[int(status)] = set(codes)
    return found


# ---------------------------------------------------------------- following the calls


@dataclass
class Scan:
    """What one function's own source does: the named errors it names (raises, builds or
    looks up), the ad-hoc errors it builds, whether it opens a write transaction, and the
    functions and classes of ours it refers to (followed in turn)."""

    errors: set[type[NamedError]] = field(default_factory=set)
    ad_hoc: set[str] = field(default_factory=set)
    writes: bool = False  # DatabaseBusy → 503 database_busy
    refers_to: list[Any] = field(default_factory=list)


def _errors_in(value: Any) -> set[type[NamedError]]:
    if isinstance(value, type) and issubclass(value, NamedError) and value is not NamedError:
        return {value}
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return {e for item in value for e in _errors_in(item)}
    return set()


def _is_ours(value: Any) -> bool:
    return getattr(value, "__module__", "").startswith("claims_api")


class _Names:
    """Resolves the names a function's source uses to the objects they stand for."""

    def __init__(self, function: Callable) -> None:
        closure = inspect.getclosurevars(function)
        self.scope = {**function.__globals__, **closure.nonlocals}

    def resolve(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            return self.scope.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if isinstance(base, (types.ModuleType, type)):
                return getattr(base, node.attr, None)
        return None


@cache
def _scan(function: Any) -> Scan:
    scan = Scan()
    if isinstance(function, type):  # building an object of ours: its methods may run
        if not issubclass(function, BaseException):
            scan.refers_to = [m for m in vars(function).values() if inspect.isfunction(m)]
        return scan
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return scan
    for definition in tree.body:  # what a decorator documents is not what the body raises
        if isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
            definition.decorator_list = []
    names = _Names(function)
    # a class named in an ``except`` clause is caught there, not raised
    handlers = [h.type for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler) and h.type]
    caught = {id(n) for handler in handlers for n in ast.walk(handler)}
    where = f"{function.__module__}.{function.__qualname__}"
    for node in ast.walk(tree):
        if id(node) in caught:
            continue
        if isinstance(node, ast.Call):
            if names.resolve(node.func) in AD_HOC:
                scan.ad_hoc.add(f"{where}: {ast.unparse(node)[:80]}")
            if isinstance(node.func, ast.Attribute) and node.func.attr == "session":
                scan.writes = True
        if isinstance(node, (ast.Name, ast.Attribute)):
            value = names.resolve(node)
            scan.errors |= _errors_in(value)
            if (inspect.isfunction(value) or isinstance(value, type)) and _is_ours(value):
                scan.refers_to.append(inspect.unwrap(value))
    return scan


@dataclass
class Reach:
    errors: set[type[NamedError]] = field(default_factory=set)
    ad_hoc: set[str] = field(default_factory=set)
    writes: bool = False


def _follow(roots: list[Any]) -> Reach:
    reach, seen = Reach(), set()
    todo = [inspect.unwrap(r) for r in roots]
    while todo:
        function = todo.pop()
        if function in seen or not _is_ours(function):
            continue
        seen.add(function)
        scan = _scan(function)
        reach.errors |= scan.errors
        reach.ad_hoc |= scan.ad_hoc
        reach.writes |= scan.writes
        todo += scan.refers_to
    return reach


def _dependency_calls(dependant) -> Iterator[Callable]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


@cache
def _reach(route: Route) -> Reach:
    dependencies = list(_dependency_calls(route.api_route.dependant))
    reach = _follow([route.api_route.endpoint, *dependencies])
    reach.writes |= get_db in dependencies
    return reach


def _needs_token(route: Route) -> bool:
    return current_principal in set(_dependency_calls(route.api_route.dependant))


ROUTES = _api_routes()


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.id)
def test_every_error_a_route_can_raise_is_documented(route: Route) -> None:
    reach = _reach(route)
    listed = documented(route.method, route.path)
    missing = sorted(
        f"{e.status} {e.code}" for e in reach.errors if e.code not in listed.get(e.status, set())
    )
    assert not missing, f"{route.id} can raise, undocumented: {missing}"
    assert not reach.ad_hoc, f"undocumentable errors built on the way: {sorted(reach.ad_hoc)}"
    if reach.writes:
        assert "database_busy" in listed.get(503, set())
    if _needs_token(route):
        assert {"unauthorized", "invalid_token"} <= listed.get(401, set())
    body = route.api_route.body_field
    if body is not None:
        assert "validation_error" in listed.get(422, set())
    if body is not None and "json" in str(getattr(body.field_info, "media_type", "json")):
        assert "invalid_json" in listed.get(422, set())


def test_the_walker_sees_through_services_dependencies_and_helpers() -> None:
    """The static check would pass vacuously if it followed nothing: spot-check its reach."""
    by_id = {r.id: r for r in ROUTES}
    codes = {e.code for e in _reach(by_id["POST /v1/claims"]).errors}
    # the service, the state machine, the ledger and the auth dependencies
    assert {"claim_already_open", "invalid_transition", "already_paid", "forbidden"} <= codes
    assert _reach(by_id["POST /v1/claims"]).writes
    upload = {e.code for e in _reach(by_id["POST /v1/photos"]).errors}
    # the form reader (its parser callbacks too) and the photo checks through the mapping
    assert {"upload_timeout", "file_too_large", "invalid_multipart", "unsupported_format"} <= upload
    assert not _reach(by_id["GET /v1/claims/{claim_id}"]).writes


def test_every_documented_code_belongs_to_one_named_error_with_that_status() -> None:
    for path, operations in _schema()["paths"].items():
        for method in operations:
            for status, codes in documented(method, path).items():
                for code in codes:
                    error = NamedError.registry.get(code)
                    assert error is not None and error.status == status, (method, path, code)


def test_no_route_documents_fastapis_default_validation_error() -> None:
    # ours is {"error": {...}}: the default HTTPValidationError would describe another shape
    assert "HTTPValidationError" not in _schema().get("components", {}).get("schemas", {})


def test_each_status_describes_its_codes_with_examples() -> None:
    response = _operation("POST", "/v1/claims")["responses"]["409"]
    assert "`claim_already_open`" in response["description"]
    examples = response["content"]["application/json"]["examples"]
    body = examples["claim_already_open"]["value"]
    assert body["error"]["code"] == "claim_already_open" and body["error"]["message"]
    assert "Retry-After" in _operation("POST", "/v1/auth/login")["responses"]["429"]["headers"]
    assert "Retry-After" in _operation("POST", "/v1/photos")["responses"]["503"]["headers"]


# ---------------------------------------------------------------- spot checks per domain


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (
            "POST",
            "/v1/claims",
            {
                400: {"idempotency_key_required", "invalid_idempotency_key"},
                401: {"unauthorized", "invalid_token"},
                403: {"forbidden"},
                404: {"order_not_found", "photo_not_found"},
                409: {"claim_already_open", "idempotency_key_reused", "line_fully_compensated"},
                422: {"unknown_line", "quantity_exceeds_line", "too_many_photos", "invalid_json"},
                503: {"database_busy"},
            },
        ),
        (
            "POST",
            "/v1/photos",
            {
                400: {"invalid_multipart", "client_disconnected", "empty_file"},
                408: {"upload_timeout"},
                413: {"file_too_large", "image_too_large"},
                415: {"unsupported_format"},
                422: {"corrupt_image", "unknown_line", "validation_error"},
                503: {"server_busy", "database_busy"},
            },
        ),
        (
            "POST",
            "/v1/review/claims/{claim_id}/decision",
            {
                403: {"appeal_needs_another_reviewer"},
                404: {"claim_not_found"},
                409: {"lease_not_held", "not_in_review"},
                422: {"amount_too_high", "message_required"},
            },
        ),
        (
            "POST",
            "/v1/auth/login",
            {401: {"invalid_credentials"}, 429: {"too_many_login_attempts"}},
        ),
        ("POST", "/v1/claims/{claim_id}/reversal", {409: {"not_paid", "already_reversed"}}),
        ("PUT", "/v1/orders/{order_id}", {409: {"order_customer_mismatch", "line_has_claims"}}),
    ],
)
def test_spot_checks(method: str, path: str, expected: dict[int, set[str]]) -> None:
    listed = documented(method, path)
    for status, codes in expected.items():
        assert codes <= listed.get(status, set()), (status, codes - listed.get(status, set()))


def test_bearer_scheme_on_exactly_the_routes_that_need_a_token() -> None:
    schemes = _schema()["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    for route in ROUTES:
        security = _operation(route.method, route.path).get("security")
        assert (security == [{"bearerAuth": []}]) == _needs_token(route), route.id
    assert _operation("POST", "/v1/auth/login").get("security") is None
    assert _operation("POST", "/v1/claims")["security"] == [{"bearerAuth": []}]


def test_idempotency_key_is_a_required_header_of_claim_submission() -> None:
    parameters = _operation("POST", "/v1/claims")["parameters"]
    (key,) = [p for p in parameters if p["name"].lower() == "idempotency-key"]
    assert key["in"] == "header" and key["required"] is True
    assert key["schema"]["maxLength"] == 200


def test_reason_codes_are_an_enum_in_the_claim_and_queue_schemas() -> None:
    schemas = _schema()["components"]["schemas"]
    assert schemas["Reason"]["properties"]["code"]["enum"] == list(REASON_CODES)
    assert schemas["QueueItem"]["properties"]["reasons"]["items"]["enum"] == list(REASON_CODES)


def test_every_photo_rejection_has_a_named_error_with_its_status() -> None:
    """imaging raises PhotoRejected(code, status); the upload answers PHOTO_REJECTIONS[code]."""
    source = Path(imaging.__file__).read_text()
    raised = set(re.findall(r'PhotoRejected\("(\w+)", (\d{3})', source))
    assert raised, "no PhotoRejected found: the pattern is out of date"
    assert {(code, str(error.status)) for code, error in PHOTO_REJECTIONS.items()} == raised


# ---------------------------------------------------------------- what the API answers


def test_the_errors_the_api_answers_are_the_documented_ones(api) -> None:
    """The answers, observed: each (status, code) is among the route's documented ones."""
    client = api.client
    customer = api.customer()
    api.put_order()
    photo = api.upload_fruit(customer)
    observed = [
        ("POST", "/v1/claims", client.post("/v1/claims", json={}, headers=customer)),
        ("POST", "/v1/claims", api.claim(customer, [photo], line_id="L9")),
        ("POST", "/v1/claims", api.claim(customer, ["pho_nope"])),
        ("POST", "/v1/claims", api.claim({}, [photo])),
        ("POST", "/v1/claims", api.claim({"Authorization": "Bearer nope"}, [photo])),
        ("POST", "/v1/claims", api.claim(api.shop_headers(), [photo])),
        ("GET", "/v1/claims", client.get("/v1/claims?cursor=%25", headers=customer)),
        ("GET", "/v1/claims/{claim_id}", client.get("/v1/claims/clm_x", headers=customer)),
        ("POST", "/v1/photos", api.upload(customer, b"")),
        ("POST", "/v1/photos", api.upload(customer, b"not a photo at all")),
        (
            "POST",
            "/v1/auth/login",
            client.post("/v1/auth/login", json={"username": "x", "password": "y"}),
        ),
        (
            "POST",
            "/v1/auth/login",
            client.post(
                "/v1/auth/login", content=b"{", headers={"Content-Type": "application/json"}
            ),
        ),
    ]
    first = api.claim(customer, [photo], key="k1")
    assert first.status_code == 201, first.text
    observed += [
        ("POST", "/v1/claims", api.claim(customer, [photo], key="k1", quantity=1)),
        ("POST", "/v1/claims", api.claim(customer, [photo])),
    ]
    seen = set()
    for method, path, response in observed:
        assert response.status_code < 500, (path, response.text)
        if response.status_code < 400:  # the second claim: paid at once, the line not open
            continue
        code = response.json()["error"]["code"]
        seen.add(code)
        assert code in documented(method, path).get(response.status_code, set()), (
            method,
            path,
            response.status_code,
            code,
        )
    # the requests above did meet the errors they were written for
    assert {
        "validation_error",
        "unknown_line",
        "photo_not_found",
        "unauthorized",
        "invalid_token",
        "forbidden",
        "invalid_cursor",
        "claim_not_found",
        "empty_file",
        "unsupported_format",
        "invalid_credentials",
        "invalid_json",
        "idempotency_key_reused",
    } <= seen
