"""One error mapping for every resolver (api/graphql/errors.py): each root field goes
through ``expected``, and an error class maps by its nearest mapped base."""

from api.graphql.errors import NotFound, PermissionDenied, from_domain, maps_expected_errors
from api.graphql.schema import MUTATION_GROUPS, QUERY_GROUPS
from core.model import errors as domain


def test_every_root_field_maps_expected_errors_one_way():
    fields = [
        f
        for group in (*QUERY_GROUPS, *MUTATION_GROUPS)
        for f in group.__strawberry_definition__.fields
    ]
    assert len(fields) >= 20
    undecorated = [
        f.name
        for f in fields
        if f.base_resolver is None or not maps_expected_errors(f.base_resolver.wrapped_func)
    ]
    assert undecorated == []


def test_errors_map_by_class_and_nearest_base():
    class Missing(domain.NotFoundError):
        pass

    mapped = from_domain(Missing("tenant", "nope"))
    assert isinstance(mapped, NotFound) and (mapped.kind, mapped.identifier) == ("tenant", "nope")
    denied = from_domain(domain.PermissionDeniedError("no"))
    assert isinstance(denied, PermissionDenied) and denied.code == "PERMISSION_DENIED"
