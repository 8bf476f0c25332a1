"""Issue 2: CRUD for every config type on one node, with validation, names, references, paging."""

import uuid as uuidlib

import pytest

import harness
from harness import (healthmonitor_body, pool_body, serviceengine_body,
                     virtualservice_body)

TYPES = ("healthmonitor", "pool", "virtualservice", "serviceengine")


class Objects:
    """Creates valid objects of every type (and what they refer to) on one node."""

    def __init__(self, node, key_dir):
        self.node = node
        self.key_dir = key_dir
        self.n = 0

    def key(self):
        self.n += 1
        return harness.make_ed25519_key(self.key_dir, f"se{self.n}")[1]

    def create(self, obj_type, body):
        status, doc = self.node.api.post(f"/api/{obj_type}", body)
        assert status == 201, f"POST /api/{obj_type} {body}: {status} {doc}"
        assert doc.get("uuid"), doc
        return doc

    def hm(self, name="hm"):
        return self.create("healthmonitor", healthmonitor_body(name))

    def pool(self, name="pool", hm_refs=()):
        return self.create("pool", pool_body(name, hm_refs))

    def se(self, name="se"):
        return self.create("serviceengine", serviceengine_body(name, self.key()))

    def body(self, obj_type, name):
        """A valid body of obj_type, creating what it must refer to."""
        self.n += 1
        dep = f"{name}-dep{self.n}"
        if obj_type == "healthmonitor":
            return healthmonitor_body(name, http=True)
        if obj_type == "pool":
            return pool_body(name, [self.hm(f"{dep}-hm")["uuid"]])
        if obj_type == "virtualservice":
            return virtualservice_body(name, self.pool(f"{dep}-pool")["uuid"],
                                       se_refs=[self.se(f"{dep}-se")["uuid"]])
        if obj_type == "serviceengine":
            return serviceengine_body(name, self.key())
        raise ValueError(obj_type)


@pytest.fixture
def objs(node, tmp_path):
    return Objects(node, tmp_path / "keys")


def missing_uuid():
    return str(uuidlib.uuid4())


def assert_error(status, doc, expected, field=None):
    codes = expected if isinstance(expected, tuple) else (expected,)
    assert status in codes, f"expected {codes}, got {status} {doc}"
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], \
        f"error body must be {{\"error\": text}}, got {doc!r}"
    if field is not None:
        assert field in doc["error"], f"error should name {field!r}: {doc['error']!r}"


def subset(expected, got):
    """Every field we sent comes back with the same value."""
    for k, v in expected.items():
        assert got.get(k) == v, f"field {k}: sent {v!r}, got {got.get(k)!r} in {got}"


@pytest.mark.parametrize("obj_type", TYPES)
def test_create_get_put_delete(node, objs, obj_type):
    api = node.api
    body = objs.body(obj_type, f"{obj_type}-a")
    status, created = api.post(f"/api/{obj_type}", body)
    assert status == 201, created
    uid = created["uuid"]
    subset(body, created)

    status, got = api.get(f"/api/{obj_type}/{uid}")
    assert status == 200, got
    assert got["uuid"] == uid
    subset(body, got)

    status, listing = api.get(f"/api/{obj_type}")
    assert status == 200, listing
    assert uid in [o["uuid"] for o in listing["results"]]
    assert listing["count"] == len(listing["results"])

    # PUT replaces the whole object and keeps the uuid
    new_body = objs.body(obj_type, f"{obj_type}-b")
    status, put = api.put(f"/api/{obj_type}/{uid}", new_body)
    assert status == 200, put
    assert put["uuid"] == uid
    status, got = api.get(f"/api/{obj_type}/{uid}")
    assert status == 200, got
    subset(new_body, got)
    # the old name is free again
    status, doc = api.post(f"/api/{obj_type}", objs.body(obj_type, f"{obj_type}-a"))
    assert status == 201, doc

    status, doc = api.delete(f"/api/{obj_type}/{uid}")
    assert status == 204, doc
    status, doc = api.get(f"/api/{obj_type}/{uid}")
    assert_error(status, doc, 404)
    status, doc = api.delete(f"/api/{obj_type}/{uid}")
    assert_error(status, doc, 404)


@pytest.mark.parametrize("obj_type", TYPES)
def test_missing_object_is_404(node, objs, obj_type):
    api = node.api
    uid = missing_uuid()
    assert_error(*api.get(f"/api/{obj_type}/{uid}"), 404)
    assert_error(*api.delete(f"/api/{obj_type}/{uid}"), 404)
    assert_error(*api.put(f"/api/{obj_type}/{uid}", objs.body(obj_type, "x-put-missing")), 404)
    assert_error(*api.get(f"/api/{obj_type}/not-a-uuid"), (400, 404))


def test_unknown_type_and_path_are_404(node):
    assert_error(*node.api.get("/api/bogus"), 404)
    assert_error(*node.api.post("/api/bogus", {"name": "x"}), 404)
    assert_error(*node.api.get("/api/pool/a/b"), (400, 404))


@pytest.mark.parametrize("path", ["/api/bogus", "/api/", "/api/internal",
                                  "/api/clusterx", "/api/cluster/bogus", "/api/eventx",
                                  "/api/event/1", "/api/userx", "/api/tokenx", "/api/login/",
                                  "/api/sessionx", "/api/pool/a/b", "/other"])
def test_the_router_answers_paths_no_area_takes_404_naming_them(node, path):
    """An admin's GET (past the gate): each area takes only its own paths; the rest fall
    through to the router's 404."""
    status, doc = node.api.get(path)
    assert status == 404, (path, status, doc)
    assert doc["error"] == f"no such resource: {path}", (path, doc)


@pytest.mark.parametrize("path", ["/api/cluster", "/api/cluster/", "/api/cluster/runtime",
                                  "/api/event", "/api/event/", "/api/pool", "/api/pool/",
                                  "/api/session", "/api/user", "/api/user/", "/api/token"])
def test_the_router_gives_each_area_its_paths(node, path):
    """(/api/internal/... is the nodes' own: an admin meets the gate's 403 there, which
    test_auth.py checks.)"""
    status, doc = node.api.get(path)
    assert status == 200, (path, status, doc)


@pytest.mark.parametrize("obj_type", TYPES)
def test_duplicate_name_is_409(node, objs, obj_type):
    api = node.api
    objs.create(obj_type, objs.body(obj_type, "dup"))
    assert_error(*api.post(f"/api/{obj_type}", objs.body(obj_type, "dup")), 409)
    # a PUT that takes another object's name
    other = objs.create(obj_type, objs.body(obj_type, "dup-other"))
    assert_error(*api.put(f"/api/{obj_type}/{other['uuid']}", objs.body(obj_type, "dup")), 409)
    status, got = api.get(f"/api/{obj_type}/{other['uuid']}")
    assert status == 200 and got["name"] == "dup-other", got
    names = [o["name"] for o in api.list_all(obj_type)]
    assert names.count("dup") == 1, names


def test_same_name_in_different_types_is_fine(node, objs):
    hm = objs.create("healthmonitor", healthmonitor_body("shared-name"))
    objs.create("pool", pool_body("shared-name", [hm["uuid"]]))


# (type, field named in the error, body mutation)
BAD_FIELDS = [
    ("healthmonitor", "name", lambda b: b.pop("name")),
    ("healthmonitor", "name", lambda b: b.update(name=123)),
    ("healthmonitor", "name", lambda b: b.update(name="")),
    ("healthmonitor", "type", lambda b: b.update(type="HEALTH_MONITOR_BOGUS")),
    ("healthmonitor", "send_interval", lambda b: b.update(send_interval="five")),
    ("healthmonitor", "send_interval", lambda b: b.update(send_interval=-1)),
    ("healthmonitor", "send_interval", lambda b: b.update(send_interval=0)),
    ("healthmonitor", "successful_checks", lambda b: b.update(successful_checks=[2])),
    ("healthmonitor", "failed_checks", lambda b: b.update(failed_checks=1.5)),
    ("healthmonitor", "http_response_codes", lambda b: b.update(http_response_codes="HTTP_2XX")),
    ("pool", "lb_algorithm", lambda b: b.update(lb_algorithm="LB_ALGORITHM_RANDOM_GUESS")),
    ("pool", "servers", lambda b: b.update(servers={"ip": "127.0.0.1"})),
    ("pool", "port", lambda b: b["servers"][0].update(port=70000)),
    ("pool", "port", lambda b: b["servers"][0].update(port="80")),
    ("pool", "ip", lambda b: b["servers"][0].update(ip="not-an-ip")),
    ("pool", "ip", lambda b: b["servers"][0].update(ip="256.1.1.1")),
    ("pool", "enabled", lambda b: b["servers"][0].update(enabled="yes")),
    ("pool", "health_monitor_refs", lambda b: b.update(health_monitor_refs="abc")),
    ("virtualservice", "vip", lambda b: b.update(vip="999.1.1.1")),
    ("virtualservice", "port", lambda b: b.update(services=[{"port": 0}])),
    ("virtualservice", "port", lambda b: b.update(services=[{"port": 65536}])),
    ("virtualservice", "services", lambda b: b.update(services="10080")),
    ("virtualservice", "application", lambda b: b.update(application="udp")),
    ("virtualservice", "enabled", lambda b: b.update(enabled="true")),
    ("virtualservice", "pool_ref", lambda b: b.update(pool_ref=17)),
    ("virtualservice", "se_refs", lambda b: b.update(se_refs="abc")),
    ("serviceengine", "public_key", lambda b: b.pop("public_key")),
    ("serviceengine", "public_key", lambda b: b.update(public_key="garbage")),
    ("serviceengine", "public_key", lambda b: b.update(public_key="ssh-ed25519 !!!not*base64")),
    # a well-formed base64 blob that is not a 51-byte ed25519 key blob
    ("serviceengine", "public_key", lambda b: b.update(public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5")),
]


@pytest.mark.parametrize("obj_type,field,mutate", BAD_FIELDS,
                         ids=[f"{t}-{f}-{i}" for i, (t, f, _) in enumerate(BAD_FIELDS)])
def test_bad_field_is_400_naming_it(node, objs, obj_type, field, mutate):
    api = node.api
    body = objs.body(obj_type, f"bad-{obj_type}")
    mutate(body)
    assert_error(*api.post(f"/api/{obj_type}", body), 400, field)
    # the same check applies to PUT, and a refused PUT changes nothing
    good = objs.create(obj_type, objs.body(obj_type, f"good-{obj_type}"))
    assert_error(*api.put(f"/api/{obj_type}/{good['uuid']}", body), 400, field)
    status, got = api.get(f"/api/{obj_type}/{good['uuid']}")
    assert status == 200 and got["name"] == f"good-{obj_type}", got
    names = [o["name"] for o in api.list_all(obj_type)]
    assert f"bad-{obj_type}" not in names


def test_reference_to_missing_object_is_400(node, objs):
    api = node.api
    hm = objs.hm("ref-hm")
    pool = objs.pool("ref-pool", [hm["uuid"]])
    se = objs.se("ref-se")
    cases = [
        ("pool", pool_body("p-missing-hm", [missing_uuid()])),
        ("pool", pool_body("p-half-missing", [hm["uuid"], missing_uuid()])),
        ("virtualservice", virtualservice_body("vs-missing-pool", missing_uuid())),
        ("virtualservice", virtualservice_body("vs-missing-se", pool["uuid"], se_refs=[missing_uuid()])),
        # a reference to an object of the wrong type is a missing reference too
        ("virtualservice", virtualservice_body("vs-wrong-type", hm["uuid"])),
        ("pool", pool_body("p-wrong-type", [se["uuid"]])),
    ]
    for obj_type, body in cases:
        status, doc = api.post(f"/api/{obj_type}", body)
        assert_error(status, doc, 400)
    # and through PUT
    status, doc = api.put(f"/api/pool/{pool['uuid']}", pool_body("ref-pool", [missing_uuid()]))
    assert_error(status, doc, 400)
    status, got = api.get(f"/api/pool/{pool['uuid']}")
    assert got["health_monitor_refs"] == [hm["uuid"]], got


def test_deleting_a_referenced_object_is_409(node, objs):
    api = node.api
    hm = objs.hm("r-hm")
    pool = objs.pool("r-pool", [hm["uuid"]])
    se = objs.se("r-se")
    vs = objs.create("virtualservice", virtualservice_body("r-vs", pool["uuid"], se_refs=[se["uuid"]]))
    for obj_type, uid in (("healthmonitor", hm["uuid"]), ("pool", pool["uuid"]),
                          ("serviceengine", se["uuid"])):
        assert_error(*api.delete(f"/api/{obj_type}/{uid}"), 409)
        status, doc = api.get(f"/api/{obj_type}/{uid}")
        assert status == 200, doc
    # unlink and delete in order
    assert api.delete(f"/api/virtualservice/{vs['uuid']}")[0] == 204
    assert api.delete(f"/api/serviceengine/{se['uuid']}")[0] == 204
    assert api.delete(f"/api/pool/{pool['uuid']}")[0] == 204
    assert api.delete(f"/api/healthmonitor/{hm['uuid']}")[0] == 204


def test_put_removes_a_reference_then_delete_works(node, objs):
    api = node.api
    hm = objs.hm("u-hm")
    pool = objs.pool("u-pool", [hm["uuid"]])
    status, doc = api.put(f"/api/pool/{pool['uuid']}", pool_body(
        "u-pool", [], servers=[{"ip": "127.0.0.1", "port": 9002, "enabled": False}]))
    assert status == 200, doc
    status, got = api.get(f"/api/pool/{pool['uuid']}")
    assert status == 200
    assert not got.get("health_monitor_refs"), got
    assert [(s["ip"], s["port"], s["enabled"]) for s in got["servers"]] == [("127.0.0.1", 9002, False)]
    assert api.delete(f"/api/healthmonitor/{hm['uuid']}")[0] == 204


def test_put_replaces_whole_object(node, objs):
    api = node.api
    pool = objs.create("pool", pool_body("w-pool", servers=[
        {"ip": "127.0.0.1", "port": 9001, "enabled": True},
        {"ip": "127.0.0.2", "port": 9002, "enabled": True}]))
    status, doc = api.put(f"/api/pool/{pool['uuid']}", pool_body(
        "w-pool", servers=[{"ip": "127.0.0.3", "port": 9003, "enabled": True}],
        lb_algorithm="LB_ALGORITHM_LEAST_CONNECTIONS"))
    assert status == 200, doc
    status, got = api.get(f"/api/pool/{pool['uuid']}")
    assert [s["ip"] for s in got["servers"]] == ["127.0.0.3"], got
    assert got["lb_algorithm"] == "LB_ALGORITHM_LEAST_CONNECTIONS"
    hm = objs.create("healthmonitor", healthmonitor_body("w-hm", http=True))
    status, doc = api.put(f"/api/healthmonitor/{hm['uuid']}", healthmonitor_body("w-hm", send_interval=0.5,
                                                                                    receive_timeout=0.25))
    assert status == 200, doc
    status, got = api.get(f"/api/healthmonitor/{hm['uuid']}")
    assert got["type"] == "HEALTH_MONITOR_TCP"
    assert got["send_interval"] == 0.5
    assert got.get("http_request") in (None, ""), f"PUT must replace, http_request kept: {got}"


def test_paging(node):
    api = node.api
    total = 250
    created = set()
    for i in range(total):
        status, doc = api.post("/api/healthmonitor", healthmonitor_body(f"page-{i:04d}"))
        assert status == 201, doc
        created.add(doc["uuid"])

    status, doc = api.get("/api/healthmonitor")
    assert status == 200, doc
    assert doc["count"] == total
    assert len(doc["results"]) == 100, "default page_size is 100"

    seen = []
    for page in (1, 2, 3):
        status, doc = api.get("/api/healthmonitor", params={"page": page, "page_size": 100})
        assert status == 200, doc
        assert doc["count"] == total
        assert len(doc["results"]) == (100 if page < 3 else 50)
        seen += [o["uuid"] for o in doc["results"]]
    assert len(seen) == len(set(seen)) == total, "pages overlap or miss objects"
    assert set(seen) == created

    status, doc = api.get("/api/healthmonitor", params={"page": 4, "page_size": 100})
    assert status == 200 and doc["results"] == [] and doc["count"] == total, doc

    status, doc = api.get("/api/healthmonitor", params={"page_size": 1000})
    assert status == 200 and len(doc["results"]) == total, doc

    for params in ({"page_size": 1001}, {"page_size": 0}, {"page_size": -1}, {"page_size": "abc"},
                   {"page": 0}, {"page": -3}, {"page": "x"}, {"page_size": "100000000000000000000"}):
        assert_error(*api.get("/api/healthmonitor", params=params), 400)


def test_writes_are_durable_in_order_of_acknowledgement(node):
    """A GET right after a 201 sees the object (acknowledged means committed and applied)."""
    api = node.api
    for i in range(50):
        status, doc = api.post("/api/healthmonitor", healthmonitor_body(f"ack-{i}"))
        assert status == 201, doc
        status, got = api.get(f"/api/healthmonitor/{doc['uuid']}")
        assert status == 200 and got["name"] == f"ack-{i}", got


def test_concurrent_creates_of_one_name_make_one_object(node):
    """Uniqueness holds when the same name races in from many clients at once."""
    from concurrent.futures import ThreadPoolExecutor
    api = node.api
    names = [f"race-{i}" for i in range(20)]
    jobs = [n for n in names for _ in range(8)]

    def one(name):
        return name, api.post("/api/healthmonitor", healthmonitor_body(name))[0]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, jobs))
    for name in names:
        codes = sorted(code for n, code in results if n == name)
        assert codes == [201] + [409] * 7, f"{name}: {codes}"
    stored = [o["name"] for o in api.list_all("healthmonitor")]
    for name in names:
        assert stored.count(name) == 1, (name, stored.count(name))
