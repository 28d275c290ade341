"""The bmc role and the rebuild playbook against a real Redfish service: sushy-tools 2.2.0 (lab/redfish/emulator.py)
with its libvirt driver on test:///default for BIOS attributes and power, and its fake driver for virtual media
(the libvirt test driver cannot upload a volume). TLS is verified against the emulator's certificate; the password
is a canary that must not appear in the output, even at -vvv.

What the emulator does not do, and so is not shown here: keep BIOS settings pending until a reset (it applies a
PATCH at once), refuse a value its registry does not allow (the role refuses it first), boot once (it keeps
"Continuous"), act on power requests in the fake driver (the libvirt driver does: test_power_cycle_...).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EMULATOR = REPO / "lab" / "redfish" / "emulator.py"
DESIRED = {"ProcTurboMode": "Disabled", "EmbeddedSata": "Ahci", "QuietBoot": False, "BootMode": "Uefi"}


@pytest.fixture(scope="module")
def bmc() -> dict:
    started = subprocess.run(
        [os.environ.get("PYTHON3", "/usr/bin/python3"), str(EMULATOR), "start"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(started.stdout.strip().splitlines()[-1])
    yield info
    subprocess.run(["/usr/bin/python3", str(EMULATOR), "stop"], check=False)


def redfish(bmc: dict, address: str, path: str) -> dict:
    request = urllib.request.Request(f"https://{address}{path}")
    token = f"{bmc['username']}:{bmc['password']}".encode()
    request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    context = ssl.create_default_context(cafile=bmc["ca_path"])
    with urllib.request.urlopen(request, context=context, timeout=10) as reply:
        return json.loads(reply.read())


def system_path(bmc: dict, address: str) -> str:
    return redfish(bmc, address, "/redfish/v1/Systems")["Members"][0]["@odata.id"]


def bios(bmc: dict) -> dict:
    return redfish(bmc, bmc["libvirt"], system_path(bmc, bmc["libvirt"]) + "/BIOS")["Attributes"]


class Run(NamedTuple):
    rc: int
    out: str
    recap: dict[str, int]


def play(bmc: dict, tmp_path: Path, playbook: str, *args: str, address: str | None = None, **host_vars) -> Run:
    """ansible-playbook against one host whose BMC is the emulator: its exit status, output and recap counts."""
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "bmc_address": address or bmc["libvirt"],
        "bmc_username": bmc["username"],
        "bmc_password": bmc["password"],
        "bmc_ca_path": bmc["ca_path"],
        **host_vars,
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"bmc-lab": host}}}))
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), playbook, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml"},
    )
    output = done.stdout + done.stderr
    recap = {}
    for line in output.splitlines():
        if line.startswith("bmc-lab") and "ok=" in line:
            recap = {k: int(v) for k, v in (part.split("=") for part in line.split()[2:])}
    return Run(done.returncode, output, recap)


ROLE = str(HERE / "bmc.yml")


def test_check_mode_reports_the_drift_and_writes_nothing(bmc, tmp_path) -> None:
    before = bios(bmc)
    rc, out, recap = play(bmc, tmp_path, ROLE, "--check", "--diff", bmc_bios_attributes=DESIRED, bmc_bios_apply=True)
    print(out[-1500:])
    assert rc == 0 and recap["changed"] == 1
    for name in ("ProcTurboMode", "EmbeddedSata", "QuietBoot"):
        assert name in out
    assert bios(bmc) == before


def test_without_the_allow_flag_the_drift_is_reported_and_nothing_written(bmc, tmp_path) -> None:
    before = bios(bmc)
    rc, out, recap = play(bmc, tmp_path, ROLE, bmc_bios_attributes=DESIRED)
    assert rc == 0 and recap["changed"] == 0
    assert "BIOS drift on bmc-lab (BiosAttributeRegistryP89.v1_0_0): " in out
    flat = " ".join(out.split())
    assert "EmbeddedSata Raid -> Ahci" in flat and "Set bmc_bios_apply: true to write it." in flat
    assert bios(bmc) == before


def test_apply_writes_the_attributes_reports_the_reset_and_the_second_run_changes_nothing(bmc, tmp_path) -> None:
    rc, out, recap = play(bmc, tmp_path, ROLE, bmc_bios_attributes=DESIRED, bmc_bios_apply=True)
    print(out[-1500:])
    assert rc == 0 and recap["changed"] == 1
    after = bios(bmc)
    assert (after["ProcTurboMode"], after["EmbeddedSata"], after["BootMode"]) == ("Disabled", "Ahci", "Uefi")
    # The emulator stores what it is sent as a string; the registry types QuietBoot as a boolean.
    assert after["QuietBoot"] == "False"
    assert "take effect at its next reset; bmc_reboot_ok is false" in out
    rc, out, recap = play(bmc, tmp_path, ROLE, bmc_bios_attributes=DESIRED, bmc_bios_apply=True)
    assert rc == 0 and recap["changed"] == 0, out[-1500:]
    assert "take effect at its next reset" not in out


def test_with_bmc_reboot_ok_the_bmc_resets_the_system(bmc, tmp_path) -> None:
    log = REPO / ".cache" / "redfish" / "libvirt.log"
    resets_before = log.read_text().count("ComputerSystem.Reset")
    rc, out, recap = play(
        bmc,
        tmp_path,
        ROLE,
        bmc_bios_attributes={"NicBoot1": "Disabled"},
        bmc_bios_apply=True,
        bmc_reboot_ok=True,
        bmc_reboot_method="bmc",
        bmc_reboot_delay=0,
    )
    print(out[-1500:])
    assert rc == 0 and recap["changed"] >= 2
    assert log.read_text().count("ComputerSystem.Reset") == resets_before + 1
    assert bios(bmc)["NicBoot1"] == "Disabled"


@pytest.mark.parametrize(
    ("case", "attributes", "vendor", "message"),
    [
        (
            "unknown-name",
            {"SriovGlobalEnable": "Enabled"},
            "generic",
            "SriovGlobalEnable: the BMC's attribute registry BiosAttributeRegistryP89.v1_0_0 has no such attribute",
        ),
        (
            "value-not-allowed",
            {"EmbeddedSata": "Nvme", "ProcTurboMode": "Enabled"},
            "generic",
            "EmbeddedSata: 'Nvme' is not one of its allowed values ['Ata', 'Ahci', 'Raid', 'Off']",
        ),
        ("read-only", {"NumCores": 16}, "generic", "NumCores is read-only in the BMC's registry"),
        # The Dell iDRAC9 table of the trading profile on a BMC that is not a Dell: every name is refused.
        ("dell-table-elsewhere", {}, "dell_idrac9", "ProcVirtualization: the BMC's attribute registry"),
    ],
)
def test_bad_input_fails_before_anything_is_written(bmc, tmp_path, case, attributes, vendor, message) -> None:
    before = bios(bmc)
    rc, out = play(
        bmc,
        tmp_path,
        ROLE,
        bmc_bios_attributes=attributes,
        bmc_vendor=vendor,
        bmc_profile="trading_server",
        bmc_bios_apply=True,
    )[:2]
    print(f"{case}: " + next((line for line in out.splitlines() if "refused" in line), out[-600:]).strip()[:400])
    assert rc != 0
    assert "BIOS attributes refused, nothing written" in out
    assert message in " ".join(out.split())
    assert bios(bmc) == before


def test_the_password_stays_out_of_the_output_at_vvv(bmc, tmp_path) -> None:
    rc, out = play(bmc, tmp_path, ROLE, "-vvv", bmc_bios_attributes={"ProcTurboMode": "Enabled"}, bmc_bios_apply=True)[
        :2
    ]
    assert rc == 0
    assert bmc["password"] not in out
    assert "NOT_LOGGING_PARAMETER" in out or "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in out


def test_power_cycle_on_the_libvirt_system(bmc, tmp_path) -> None:
    path = system_path(bmc, bmc["libvirt"])
    rc, out = play(bmc, tmp_path, str(HERE / "power.yml"), "-e", "command=PowerForceOff")[:2]
    assert rc == 0, out[-1500:]
    assert redfish(bmc, bmc["libvirt"], path)["PowerState"] == "Off"
    rc, out = play(bmc, tmp_path, str(HERE / "power.yml"), "-e", "command=PowerOn")[:2]
    assert rc == 0, out[-1500:]
    assert redfish(bmc, bmc["libvirt"], path)["PowerState"] == "On"


@pytest.fixture()
def image_server(tmp_path):
    """A small "installer image" over HTTP on loopback, with the requests it served."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "installer.iso").write_bytes(os.urandom(64 * 1024))
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def log_message(self, format, *args):
            requests.append(format % args)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/installer.iso", requests
    server.shutdown()


def test_rebuild_inserts_the_image_boots_it_once_and_power_cycles(bmc, tmp_path, image_server) -> None:
    url, requests = image_server
    playbook = str(REPO / "playbooks" / "bmc_rebuild.yml")
    log = REPO / ".cache" / "redfish" / "fake.log"
    resets_before = log.read_text().count("ComputerSystem.Reset")
    rc, out = play(bmc, tmp_path, playbook, "-e", f"bmc_rebuild_image_url={url}", address=bmc["fake"])[:2]
    assert rc != 0 and "set bmc_rebuild_confirm=bmc-lab" in " ".join(out.split())
    rc, out = play(
        bmc,
        tmp_path,
        playbook,
        "-e",
        f"bmc_rebuild_image_url={url}",
        "-e",
        "bmc_rebuild_confirm=bmc-lab",
        address=bmc["fake"],
    )[:2]
    print(out[-2500:])
    assert rc == 0, out[-2500:]
    path = system_path(bmc, bmc["fake"])
    media = redfish(bmc, bmc["fake"], path + "/VirtualMedia/Cd")
    assert (media["Inserted"], media["Image"]) == (True, url)
    # The emulator fetched the image from the URL, as a BMC does.
    assert any("GET /installer.iso" in line for line in requests)
    system = redfish(bmc, bmc["fake"], path)
    assert system["Boot"]["BootSourceOverrideTarget"] == "Cd"
    # The fake driver takes power requests without acting on them (its system reports Off throughout, so
    # redfish_command skips the ForceOff and sends the On): the reset reached it;
    # test_power_cycle_on_the_libvirt_system shows both acting on the libvirt system.
    assert log.read_text().count("ComputerSystem.Reset") == resets_before + 1
