"""TagResources, UntagResources and ListTagResources (ECS 2014-05-26) on instances through both
official SDK generations: set, overwrite, remove, list with filters and pages, the
20-tags-per-instance limit, and every bad input answered with ECS's code and status."""

import pytest

from nubis import ecs_describe, expect_ecs_error, random_aliyun_instance_id

pytestmark = pytest.mark.timeout(120)


def tag(ecs, ids, tags, **extra):
    return ecs.call("TagResources", ResourceType="instance", ResourceId=list(ids),
                    Tag=[{"Key": k, "Value": v} for k, v in tags.items()], **extra)


def untag(ecs, ids, keys=None, **extra):
    params = {"ResourceType": "instance", "ResourceId": list(ids), **extra}
    if keys is not None:
        params["TagKey"] = list(keys)
    return ecs.call("UntagResources", **params)


def listed(ecs, ids=None, **extra) -> set[tuple[str, str, str]]:
    params = {"ResourceType": "instance", **extra}
    if ids is not None:
        params["ResourceId"] = list(ids)
    out = ecs.call("ListTagResources", **params)["TagResources"]["TagResource"]
    assert all(t["ResourceType"] == "ALIYUN::ECS::INSTANCE" for t in out), out
    return {(t["ResourceId"], t["TagKey"], t["TagValue"]) for t in out}


def test_tag_untag_list(ecs_any, ali_make_instance):
    a, b = ali_make_instance(amount=2)
    assert tag(ecs_any, [a.id, b.id], {"env": "dev", "team": ""})["RequestId"]
    assert listed(ecs_any, [a.id, b.id]) == {
        (a.id, "env", "dev"), (a.id, "team", ""), (b.id, "env", "dev"), (b.id, "team", "")}
    # Overwrite one value; DescribeInstances shows the same tags.
    tag(ecs_any, [a.id], {"env": "prod"})
    assert {"TagKey": "env", "TagValue": "prod"} in ecs_describe(ecs_any, a.id)["Tags"]["Tag"]
    # Filters: by key, by key and value.
    got = {t for t in listed(ecs_any, Tag=[{"Key": "env", "Value": "prod"}]) if t[0] in (a.id, b.id)}
    assert got == {(a.id, "env", "prod")}
    assert {r for r, _, _ in listed(ecs_any, Tag=[{"Key": "env"}])} >= {a.id, b.id}
    untag(ecs_any, [a.id], ["team", "not-there"])
    assert listed(ecs_any, [a.id]) == {(a.id, "env", "prod")}
    untag(ecs_any, [b.id], All=True)
    assert listed(ecs_any, [b.id]) == set()
    # Neither TagKey nor All: nothing is removed.
    untag(ecs_any, [a.id])
    assert listed(ecs_any, [a.id]) == {(a.id, "env", "prod")}


def test_limit_of_twenty_per_instance(ecs, ali_running):
    iid = ali_running.id
    tag(ecs, [iid], {f"k{i}": "v" for i in range(20)})
    # Overwriting keeps the count; one more key is refused and changes nothing.
    tag(ecs, [iid], {"k0": "w"})
    expect_ecs_error(400, "InvalidTagCount", tag, ecs, [iid], {"k20": "v"})
    assert len(listed(ecs, [iid])) == 20


def test_pages(ecs, ali_make_instance):
    insts = ali_make_instance(amount=3)
    ids = [i.id for i in insts]
    tag(ecs, ids, {f"p{i}": "x" for i in range(20)})
    first = ecs.call("ListTagResources", ResourceType="instance", ResourceId=ids)
    page = first["TagResources"]["TagResource"]
    assert len(page) == 50 and first["NextToken"]
    rest = ecs.call("ListTagResources", ResourceType="instance", ResourceId=ids, NextToken=first["NextToken"])
    assert len(rest["TagResources"]["TagResource"]) == 10 and not rest["NextToken"]


def test_bad_inputs(ecs, ali_running):
    iid = ali_running.id
    tag(ecs, [iid], {"keep": "1"})
    cases = [
        (400, "MissingParameter.ResourceType",
         lambda: ecs.common("TagResources", ResourceId=[iid], Tag=[{"Key": "a", "Value": "b"}])),
        (404, "InvalidResourceType.NotFound",
         lambda: ecs.common("TagResources", ResourceType="vm", ResourceId=[iid], Tag=[{"Key": "a", "Value": "b"}])),
        (400, "MissingParameter.ResourceIds",
         lambda: ecs.common("TagResources", ResourceType="instance", Tag=[{"Key": "a", "Value": "b"}])),
        (400, "MissingParameter.Tags", lambda: ecs.common("TagResources", ResourceType="instance", ResourceId=[iid])),
        (400, "MissingParameter.TagKey",
         lambda: ecs.common("TagResources", ResourceType="instance", ResourceId=[iid], Tag=[{"Value": "b"}])),
        (404, "InvalidResourceId.NotFound", lambda: tag(ecs, [random_aliyun_instance_id()], {"a": "b"})),
        (404, "InvalidResourceId.NotFound",
         lambda: ecs.common("TagResources", ResourceType="disk", ResourceId=["d-x"], Tag=[{"Key": "a", "Value": "b"}])),
        (400, "InvalidTagKey.Malformed", lambda: tag(ecs, [iid], {"aliyun-x": "b"})),
        (400, "InvalidTagKey.Malformed", lambda: tag(ecs, [iid], {"k" * 129: "b"})),
        (400, "InvalidTagValue.Malformed", lambda: tag(ecs, [iid], {"a": "http://x"})),
        (400, "Duplicate.TagKey",
         lambda: ecs.common("TagResources", ResourceType="instance", ResourceId=[iid],
                            Tag=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}])),
        (400, "InvalidTagCount", lambda: tag(ecs, [iid], {f"k{i}": "v" for i in range(21)})),
        (400, "InvalidResourceId.TooMany", lambda: tag(ecs, [iid] * 51, {"a": "b"})),
        (400, "InvalidTagCount", lambda: untag(ecs, [iid], [f"k{i}" for i in range(21)])),
        (404, "InvalidResourceId.NotFound", lambda: untag(ecs, [random_aliyun_instance_id()], ["a"])),
        (400, "MissingParameter.ResourceType", lambda: ecs.common("ListTagResources", ResourceId=[iid])),
        (400, "InvalidParameter.TagValue",
         lambda: ecs.common("ListTagResources", ResourceType="instance", Tag=[{"Value": "x"}])),
        (400, "InvalidParameter",
         lambda: ecs.common("ListTagResources", ResourceType="instance", NextToken="not-a-token")),
        (400, "MissingRegionId",
         lambda: ecs.common("ListTagResources", ResourceType="instance", ResourceId=[iid], RegionId="")),
    ]
    for status, code, call in cases:
        expect_ecs_error(status, code, call)
    assert listed(ecs, [iid]) == {(iid, "keep", "1")}
