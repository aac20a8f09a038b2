"""The rules the uniform REST routes share (orchestrator_gateway._routes._factory): the
field-mask rule of every PATCH and the rendering of answers. No I/O: the rules are plain
functions over pydantic bodies and protobuf messages."""

from __future__ import annotations

import pytest

from orchestrator_gateway._bodies import QuotaUpdate, ScheduleUpdate, SourceUpdate
from orchestrator_gateway._problems import ProblemError
from orchestrator_gateway._routes._factory import Page, field_mask, render
from orchestrator_gateway._routes.runs import RunCanceled
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2


def test_patch_masks_the_fields_sent_with_a_value_and_keeps_version_out_of_the_mask() -> None:
    body = SourceUpdate.model_validate({"name": "crm", "host": None, "version": 7})
    values, mask = field_mask(body, resources_pb2.Source)
    assert list(mask.paths) == ["name"]
    assert values == {"name": "crm", "version": 7}


def test_patch_mask_is_in_name_order_and_false_is_a_value() -> None:
    body = QuotaUpdate.model_validate({"paused": False, "max_active": 0, "burst": 3})
    values, mask = field_mask(body, resources_pb2.Quota)
    assert list(mask.paths) == ["burst", "max_active", "paused"]
    assert values == {"burst": 3, "max_active": 0, "paused": False}


def test_patch_sends_enum_labels_as_numbers() -> None:
    body = ScheduleUpdate.model_validate({"catch_up": "all", "overlap": "buffer_one"})
    values, mask = field_mask(body, resources_pb2.Schedule)
    assert list(mask.paths) == ["catch_up", "overlap"]
    assert values == {
        "catch_up": resources_pb2.CATCH_UP_POLICY_ALL,
        "overlap": resources_pb2.OVERLAP_POLICY_BUFFER_ONE,
    }


@pytest.mark.parametrize("sent", [{}, {"name": None}, {"version": 3}])
def test_patch_with_nothing_to_change_is_400(sent: dict) -> None:
    with pytest.raises(ProblemError) as caught:
        field_mask(SourceUpdate.model_validate(sent), resources_pb2.Source)
    assert caught.value.status == 400
    assert "nothing to change" in caught.value.detail


def test_render_answers_a_page_a_field_or_the_fields_of_a_model() -> None:
    listed = scheduler_pb2.ListRunsResponse(
        runs=[resources_pb2.Run(id="r1"), resources_pb2.Run(id="r2")], next_page_token="t"
    )
    page = render(listed, Page("runs"))
    assert [run["id"] for run in page["items"]] == ["r1", "r2"]
    assert page["next_page_token"] == "t"

    canceled = scheduler_pb2.CancelRunResponse(run=resources_pb2.Run(id="r1"), canceled_job_count=4)
    assert render(canceled, "run")["id"] == "r1"
    assert render(canceled, RunCanceled) == {
        "run": render(canceled, "run"),
        "canceled_job_count": 4,
    }
