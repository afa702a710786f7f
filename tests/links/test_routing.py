"""indiserver's routing rules: BLOB policies and snoop records."""

from __future__ import annotations

from indiredis.protocol.parser import parse_message
from indiredis.protocol.routing import BlobPolicy, Router


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
    assert set(router.snoopers(NUMBER, exclude="guider")) == {"focuser"}
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


def test_asking_for_its_own_device_before_defining_it_is_no_snoop():
    router: Router[str] = Router()
    router.add_snoop("cam-driver", "Cam", "TEMP")
    router.learn("cam-driver", NUMBER)
    assert list(router.snoopers(NUMBER)) == []
    assert router.forget("cam-driver") == ["Cam"] and router.owner("Cam") is None
