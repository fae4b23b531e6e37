"""The original project's sample CR: two NICs in 11.11.11.0/24 on instance b4975c5f-..."""
from conftest import PRODUCT_UUID, assert_nic_configured

SEED = [
    {"id": 0, "name": "multinic0", "macAddress": "fa:16:3e:1c:1a:6e", "address": "11.11.11.37",
     "cidr": "11.11.11.0/24", "mtu": 1450},
    {"id": 1, "name": "multinic1", "macAddress": "fa:16:3e:0a:17:3b", "address": "11.11.11.148",
     "cidr": "11.11.11.0/24", "mtu": 1450},
]


def add_seed_nics(node):
    node.nic("ens3", SEED[0]["macAddress"])
    node.nic("ens7", SEED[1]["macAddress"])


def test_seed_sample_configures_both_nics(node, daemon):
    add_seed_nics(node)

    state, results = daemon.apply(SEED, {"instanceId": PRODUCT_UUID})

    assert state == "Configured"
    assert {r["macAddress"]: r["state"] for r in results} == \
        {e["macAddress"]: "configured" for e in SEED}
    for entry in SEED:
        assert_nic_configured(node, entry)
    assert daemon.prop("State") == "Configured"


def test_instance_id_matches_product_uuid_in_any_case(node, start_daemon):
    daemon = start_daemon(product_uuid=PRODUCT_UUID.upper())
    add_seed_nics(node)

    state, _ = daemon.apply(SEED, {"instanceId": PRODUCT_UUID})

    assert state == "Configured"
    assert daemon.prop("InstanceId").lower() == PRODUCT_UUID
    state, results = daemon.apply(SEED, {"instanceId": PRODUCT_UUID.upper()})
    assert state == "Configured"
    assert {r["state"] for r in results} == {"unchanged"}


def test_other_instance_id_is_refused_and_changes_nothing(node, daemon):
    add_seed_nics(node)
    before, files = node.snapshot(), daemon.files()
    other = "b4975c5f-50bb-479f-9e7b-a430815ae853"

    name, message = daemon.apply_error(SEED, {"instanceId": other})

    assert name == "io.multinic.Agent1.Error.InstanceMismatch"
    assert "instanceId" in message
    assert node.snapshot() == before
    assert daemon.files() == files
    assert daemon.plan(SEED, {"instanceId": PRODUCT_UUID}), "the refused Apply did apply"
