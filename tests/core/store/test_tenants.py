import pytest

from core.model.auth import Principal, Role
from core.model.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from tests.conftest import ADMIN


async def test_create_and_read_tenant(services):
    created = await services.tenants.create(ADMIN, "northwind", "Northwind", None, ["production"])
    assert created.release == "2.0"  # newest released by default
    got = await services.tenants.get(ADMIN, "northwind")
    assert (got.slug, got.name, got.release, got.environments) == (
        "northwind",
        "Northwind",
        "2.0",
        ("production",),
    )
    audit = await services.audit.list_all(ADMIN, tenant="northwind")
    assert audit[0].action == "create_tenant"


async def test_no_tenant_lands_on_a_planned_release_by_default(services):
    """With no release released, a tenant created without a release is refused
    (as naming a planned one is), rather than put on the newest planned one."""
    from sqlalchemy import update

    from core.model.manifest import PLANNED
    from core.store.models import Release

    async with services.sessions.begin() as session:
        await session.execute(update(Release).values(status=PLANNED))
    with pytest.raises(InvalidInputError) as refused:
        await services.tenants.create(ADMIN, "northwind", "Northwind", None)
    assert "every registered release is planned" in str(refused.value)
    assert "known releases: 1.0, 1.5, 2.0" in str(refused.value)
    assert await services.tenants.list_all(ADMIN) == []


@pytest.mark.parametrize(
    ("args", "error", "fragment"),
    [
        (("Bad Slug", "X"), InvalidInputError, "valid tenant slug"),
        (("ok", "  "), InvalidInputError, "must not be empty"),
        (("ok", "X", "7.7"), NotFoundError, "known releases: 1.0, 1.5, 2.0"),
        (("ok", "X", None, ["Prod!"]), InvalidInputError, "environment name"),
    ],
)
async def test_bad_tenants_are_refused(services, args, error, fragment):
    with pytest.raises(error) as err:
        await services.tenants.create(ADMIN, *args)
    assert fragment in err.value.message
    assert await services.tenants.list_all(ADMIN) == []


async def test_duplicate_slug(services, tenant):
    with pytest.raises(AlreadyExistsError):
        await services.tenants.create(ADMIN, tenant, "Again")
    assert len(await services.tenants.list_all(ADMIN)) == 1


async def test_list_is_scoped(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other")
    consultant = Principal(Role.CONSULTANT, "c", frozenset({tenant}))
    assert [t.slug for t in await services.tenants.list_all(consultant)] == [tenant]
    with pytest.raises(PermissionDeniedError):
        await services.tenants.get(consultant, "other")
    with pytest.raises(PermissionDeniedError):
        await services.tenants.create(consultant, "third", "Third")


async def test_overlong_names_are_refused_before_the_database(services):
    with pytest.raises(InvalidInputError, match="at most 200"):
        await services.tenants.create(Principal.system(), "longname", "N" * 201, "2.0")
