"""GraphQL: recorded hook inputs (``setInputRecording``, ``inputSamples``,
``deleteInputSamples``): thin types over :mod:`core.model.samples`, served by
:class:`core.store.samples.InputSampleService`. Admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Union, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from core.model import samples as domain


@strawberry.type(
    description="A tenant's choice to record what its customizations' hooks receive "
    "(off unless turned on)."
)
class InputRecording:
    tenant: str
    enabled: bool
    retention_days: int = strawberry.field(description="days a sample is kept")
    samples: int = strawberry.field(
        description="samples kept per customization and hook: the newest"
    )

    @classmethod
    def from_domain(cls, p: domain.RecordingPolicy) -> InputRecording:
        return cls(
            tenant=p.tenant,
            enabled=p.enabled,
            retention_days=p.retention_days,
            samples=p.samples,
        )


@strawberry.type(
    description="One hook call's recorded inputs (no secret setting: removed before it was stored)."
)
class InputSample:
    id: str
    environment: str | None
    customization: str
    version: str = strawberry.field(description="the version the tenant ran then")
    hook: str
    inputs: JSON = strawberry.field(
        description="the hook's arguments (tailor_resolve_settings: tenant, environment "
        "and the layered values)"
    )
    recorded_at: datetime

    @classmethod
    def from_domain(cls, s: domain.InputSample) -> InputSample:
        return cls(
            id=s.id,
            environment=s.environment,
            customization=s.customization,
            version=s.version,
            hook=s.hook,
            inputs=cast(JSON, dict(s.inputs)),
            recorded_at=s.recorded_at,
        )


@strawberry.type(description="A tenant's recording policy and its recorded samples.")
class InputSamples:
    tenant: str
    recording: InputRecording
    samples: list[InputSample]


@strawberry.type(description="What deleteInputSamples deleted.")
class InputSamplesDeleted:
    tenant: str
    deleted: int


InputRecordingResult = Annotated[
    Union[InputRecording, Errors],  # noqa: UP007
    strawberry.union("InputRecordingResult"),
]
InputSamplesResult = Annotated[
    Union[InputSamples, Errors],  # noqa: UP007
    strawberry.union("InputSamplesResult"),
]
InputSamplesDeletedResult = Annotated[
    Union[InputSamplesDeleted, Errors],  # noqa: UP007
    strawberry.union("InputSamplesDeletedResult"),
]


@strawberry.type
class SamplesQuery:
    @strawberry.field(
        description="A tenant's recording policy and recorded hook inputs, opened (admin); "
        "never a secret setting's value."
    )
    @expected
    async def input_samples(self, info: Info, tenant: str) -> InputSamplesResult:
        ctx = info.context
        policy = await ctx.services.samples.policy(ctx.principal, tenant)
        found = await ctx.services.samples.list_samples(ctx.principal, tenant)
        return InputSamples(
            tenant=tenant,
            recording=InputRecording.from_domain(policy),
            samples=[InputSample.from_domain(s) for s in found],
        )


@strawberry.type
class SamplesMutation:
    @strawberry.mutation(
        description="Record (or stop recording) what a tenant's customizations' hooks "
        "receive, for upgrade rehearsals: at most `samples` per customization and hook "
        "(the newest), kept `retentionDays` days, sealed with the server's secret key "
        "(refused without one), secret settings removed. Off keeps what was recorded "
        "(deleteInputSamples deletes it). Admin; audited."
    )
    @expected
    async def set_input_recording(
        self,
        info: Info,
        tenant: str,
        enabled: bool,
        retention_days: int | None = None,
        samples: int | None = None,
    ) -> InputRecordingResult:
        ctx = info.context
        policy = await ctx.services.samples.set_policy(
            ctx.principal, tenant, enabled, retention_days, samples
        )
        return InputRecording.from_domain(policy)

    @strawberry.mutation(description="Delete every recorded sample of a tenant. Admin; audited.")
    @expected
    async def delete_input_samples(self, info: Info, tenant: str) -> InputSamplesDeletedResult:
        ctx = info.context
        deleted = await ctx.services.samples.delete_samples(ctx.principal, tenant)
        return InputSamplesDeleted(tenant=tenant, deleted=deleted)
