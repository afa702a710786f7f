"""indiserver's routing rules: BLOB policies and snoop records."""

from __future__ import annotations

from indiredis.protocol.parser import parse_message
from indiredis.protocol.routing import BlobDemand, BlobPolicy, ClientBlobPolicies, Router


def msg(xml: str):
    return parse_message(xml.encode())


BLOB = msg(
    '<setBLOBVector device="Cam" name="IMG"><oneBLOB name="I" size="1" format=".f">YQ==</oneBLOB>'
    "</setBLOBVector>"
)
NUMBER = msg('<setNumberVector device="Cam" name="TEMP"><oneNumber name="T">1</oneNumber></setNumberVector>')


def test_blob_policy_never_also_only():
    policy = BlobPolicy()
    assert policy.passes(NUMBER) and not policy.passes(BLOB)  # Never by default, as indiserver
    policy.update(msg('<enableBLOB device="Cam">Also</enableBLOB>'))
    assert policy.passes(NUMBER) and policy.passes(BLOB)
    policy.update(msg('<enableBLOB device="Cam" name="IMG">Only</enableBLOB>'))
    assert policy.passes(BLOB) and policy.passes(NUMBER)  # Only applies to IMG, TEMP is still Also
    img_def = msg(
        '<defBLOBVector device="Cam" name="IMG" perm="ro" state="Idle"><defBLOB name="I"/></defBLOBVector>'
    )
    assert policy.passes(
        img_def
    )  # a property's Only withholds none of the device's other traffic (indiserver)
    policy.update(msg('<enableBLOB device="Cam">Only</enableBLOB>'))  # device-wide replaces property rules
    assert policy.passes(BLOB) and not policy.passes(NUMBER)
    policy.update(msg('<enableBLOB device="Cam">Nonsense</enableBLOB>'))
    assert not policy.passes(BLOB)


def test_snoopers_get_matching_traffic_and_blobs_only_when_enabled():
    router: Router[str] = Router()
    router.learn("cam-driver", NUMBER)
    router.add_snoop("guider", "Cam", "TEMP")
    router.add_snoop("focuser", "Cam", "")
    assert set(router.snoopers(NUMBER)) == {"guider", "focuser"}
    assert list(router.snoopers(BLOB)) == []
    router.set_snoop_blobs("focuser", msg('<enableBLOB device="Cam">Also</enableBLOB>'))
    assert list(router.snoopers(BLOB)) == ["focuser"]
    router.set_snoop_blobs("focuser", msg('<enableBLOB device="Cam">Only</enableBLOB>'))
    assert list(router.snoopers(BLOB)) == ["focuser"] and list(router.snoopers(NUMBER)) == ["guider"]


def test_snoop_records_outlive_the_snooped_device_and_its_driver():
    """As in indiserver: drivers snoop once, at start, and expect the traffic whenever it flows."""
    router: Router[str] = Router()
    router.learn("cam-driver", NUMBER)
    router.add_snoop("guider", "Cam", "TEMP")
    gone = msg('<delProperty device="Cam"/>')
    assert list(router.snoopers(gone)) == ["guider"]  # told that the device is gone
    assert router.forget("cam-driver") == ["Cam"]
    router.learn("cam-driver-restarted", NUMBER)
    assert list(router.snoopers(NUMBER)) == ["guider"]
    router.forget("guider")  # the snooper's own records end with it: a restarted driver asks again
    assert list(router.snoopers(NUMBER)) == []


def test_a_driver_that_snoops_its_own_device_gets_its_own_traffic():
    """As in indiserver (issue 17): the CCD simulator's filter wheel is the camera device itself."""
    router: Router[str] = Router()
    router.add_snoop("cam-driver", "Cam", "TEMP")  # asked before defining it: a snoop all the same
    router.learn("cam-driver", NUMBER)
    router.add_snoop("guider", "Cam", "")
    assert set(router.snoopers(NUMBER)) == {"cam-driver", "guider"}
    assert list(router.snoopers(BLOB)) == []  # BLOBs only after its own enableBLOB, as for any snooper
    assert router.forget("cam-driver") == ["Cam"] and router.owner("Cam") is None
    assert list(router.snoopers(NUMBER)) == ["guider"]


def test_a_snoop_request_goes_to_the_owner_and_back_to_its_sender_only_once():
    router: Router[str] = Router()
    router.learn("cam-driver", NUMBER)
    ask_temp = msg('<getProperties version="1.7" device="Cam" name="TEMP"/>')
    assert router.snoop_request("guider", ask_temp) == ["cam-driver"]
    assert router.snoop_request("guider", ask_temp) == ["cam-driver"]  # another driver's: every time
    assert router.snoop_request("cam-driver", ask_temp) == ["cam-driver"]  # its own: echoed once ...
    assert router.snoop_request("cam-driver", ask_temp) == []  # ... so that it can never loop
    assert router.snoop_request("guider", msg('<getProperties version="1.7" device="Elsewhere"/>')) is None
    assert router.snoop_request("guider", msg('<getProperties version="1.7"/>')) == []


def policy(*instructions: str) -> BlobPolicy:
    """A client's policy after the given enableBLOB (``device[.property]=instruction``) requests."""
    result = BlobPolicy()
    for text in instructions:
        target, instruction = text.split("=")
        device, _, name = target.partition(".")
        result.set(device, name, instruction)
    return result


def test_blob_demand_asks_the_union_never_only_and_back_to_never_when_the_last_client_leaves():
    demand = BlobDemand()
    only, quiet = policy("Cam=Only"), policy()
    assert demand.requests([only, quiet]) == [("Cam", "", "Also")]  # never Only: the others need the rest
    assert demand.wants("Cam", "IMG")
    assert demand.requests([only, quiet]) == []  # nothing changed, nothing asked
    also_img = policy("Cam.IMG=Also")
    assert demand.requests([also_img, quiet]) == [("Cam", "", "Never"), ("Cam", "IMG", "Also")]
    assert demand.wants("Cam", "IMG") and not demand.wants("Cam", "OTHER")
    assert demand.restore("Cam") == [("Cam", "IMG", "Also")]  # Never is a restarted upstream's default
    assert demand.restore("Mount") == []
    assert demand.requests([quiet]) == [("Cam", "IMG", "Never")]  # the last one left: back to Never
    assert demand.asked == {} and not demand.wants("Cam", "IMG")
    assert demand.requests([policy("Cam=Never")]) == []  # Never is what the upstream holds already


def test_blob_demand_keeps_a_property_exception_to_a_device_wide_choice():
    demand = BlobDemand()
    clients = [policy("Cam=Also", "Cam.IMG=Never")]
    assert demand.requests(clients) == [("Cam", "", "Also"), ("Cam", "IMG", "Never")]
    assert demand.restore() == [("Cam", "", "Also"), ("Cam", "IMG", "Never")]
    clients.append(policy("Cam.IMG=Only"))
    assert demand.requests(clients) == [("Cam", "IMG", "Also")]
    assert demand.restore() == [("Cam", "", "Also")]


def enable(device: str, instruction: str, name: str = ""):
    attr = f' name="{name}"' if name else ""
    return msg(f'<enableBLOB device="{device}"{attr}>{instruction}</enableBLOB>')


def test_client_blob_policies_each_client_side_its_own_and_the_upstream_the_union():
    sides = ClientBlobPolicies()
    assert sides.update("store", enable("Cam", "Also", "IMG")) == ([("Cam", "IMG", "Also")], [])
    assert sides.update("kstars", enable("Cam", "Also")) == ([("Cam", "", "Also")], [])
    assert sides.wanted(BLOB) and sides.wanted(NUMBER)
    # the port's last BLOB client left: Never for kstars only; the store still gets IMG
    assert sides.update("kstars", enable("Cam", "Never")) == (
        [("Cam", "", "Never"), ("Cam", "IMG", "Also")],
        [],
    )
    assert set(sides.policies) == {"store"}  # kstars asks for nothing now: forgotten
    assert sides.wanted(BLOB)
    assert sides.restore() == [("Cam", "IMG", "Also")]
    # Only is asked upstream as Also (the topic is shared: the others still need Cam's other traffic)
    assert sides.update("guider", enable("Cam", "Only")) == ([("Cam", "", "Also")], [])
    assert sides.update("guider", enable("Cam", "Never")) == (
        [("Cam", "", "Never"), ("Cam", "IMG", "Also")],
        [],
    )
    assert sides.update("store", enable("Cam", "Never", "IMG")) == ([("Cam", "IMG", "Never")], [])
    assert sides.policies == {} and not sides.wanted(BLOB) and sides.wanted(NUMBER)
    assert sides.restore() == []


def test_client_blob_policies_remember_a_bounded_number_of_client_sides():
    sides = ClientBlobPolicies(kept=3)
    evicted = []
    for index in range(100):  # a stranger inventing client ids
        evicted += sides.update(f"forged{index}", enable(f"Fake{index}", "Also"))[1]
    assert evicted == [f"forged{index}" for index in range(97)]  # said, for the caller to log
    sides.update("store", enable("Cam", "Also", "IMG"))
    assert len(sides.policies) == 3 and "store" in sides.policies
    for index in range(2):  # the genuine one asked most recently: the newest ids push out older ones first
        sides.update(f"again{index}", enable("Fake", "Also"))
    assert "store" in sides.policies and sides.wanted(BLOB)
