"""Repository, key and pin configuration of the GPU stack roles, rendered as the roles write it.

NVIDIA's and Docker's repositories are not reachable from the test machines: what is checked here is what
apt would be given (deb822 sources, keyrings, preferences, holds, unattended-upgrades drop-in).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("ansible")
from gpu_stack_render import ROLES, Host, candidate, deb822

CUDA = "developer.download.nvidia.com"
DEBIAN = "deb.debian.org"

# Published fingerprints (docs/gpu-stack.md names where).
CUDA_FPR = "EB693B3035CD5710E231E123A4B469963BF863CC"
DOCKER_FPR = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
TOOLKIT_FPR = "C95B321B61E88C1809C4F759DDCAE044F796ECB0"


def driver_host(**overrides: object) -> Host:
    return Host(("nvidia_driver",), **overrides)


def test_pinned_fingerprints_are_the_published_ones() -> None:
    assert driver_host().value("nvidia_driver_cuda_repo_key_fingerprint") == CUDA_FPR
    runtime = Host(("container_runtime",))
    assert runtime.value("container_runtime_docker_repo_key_fingerprint") == DOCKER_FPR
    assert runtime.value("container_runtime_nvidia_repo_key_fingerprint") == TOOLKIT_FPR


@pytest.mark.parametrize(("facts", "distro"), [("debian12", "debian12"), ("ubuntu2204", "ubuntu2204")])
def test_cuda_repository_source_is_signed_by_its_own_keyring(facts: str, distro: str) -> None:
    host = driver_host(facts=facts)
    url = host.value("nvidia_driver_cuda_repo_url")
    assert url == f"https://{CUDA}/compute/cuda/repos/{distro}/x86_64/"
    assert host.value("nvidia_driver_cuda_repo_key_url") == url + "3bf863cc.pub"
    text = host.render(
        "nvidia_driver",
        "apt-source.sources.j2",
        nvidia_driver_apt_repo_uris=url,
        nvidia_driver_apt_repo_suites="/",
        nvidia_driver_apt_repo_components=[],
        nvidia_driver_apt_repo_architectures=[],
        nvidia_driver_apt_repo_key_fingerprint=CUDA_FPR,
        __nvidia_driver_apt_repo_keyring="/etc/apt/keyrings/onprem-nvidia-cuda.asc",
    )
    assert text.startswith("#")
    assert CUDA_FPR in text
    (source,) = deb822(text)
    assert source == {
        "Types": "deb",
        "URIs": url,
        "Suites": "/",
        "Signed-By": "/etc/apt/keyrings/onprem-nvidia-cuda.asc",
    }


def test_docker_repository_source() -> None:
    host = Host(("container_runtime",))
    text = Host(("nvidia_driver",)).render(
        "nvidia_driver",
        "apt-source.sources.j2",
        nvidia_driver_apt_repo_uris=host.value("container_runtime_docker_repo_url"),
        nvidia_driver_apt_repo_suites="bookworm",
        nvidia_driver_apt_repo_components=["stable"],
        nvidia_driver_apt_repo_architectures=["amd64"],
        nvidia_driver_apt_repo_key_fingerprint=DOCKER_FPR,
        __nvidia_driver_apt_repo_keyring="/etc/apt/keyrings/onprem-docker.asc",
    )
    (source,) = deb822(text)
    assert source["URIs"] == "https://download.docker.com/linux/debian"
    assert source["Components"] == "stable" and source["Architectures"] == "amd64"
    assert source["Signed-By"] == "/etc/apt/keyrings/onprem-docker.asc"


def _pref_files(host: Host) -> dict[str, str]:
    """The preferences.d files these roles write: the CUDA repository's and base's branch pin."""
    stanzas = host.value("__nvidia_driver_cuda_repo_preferences")
    cuda = host.render(
        "nvidia_driver",
        "apt-preferences.pref.j2",
        nvidia_driver_apt_repo_preferences=stanzas,
        nvidia_driver_apt_repo_name="onprem-nvidia-cuda",
    )
    pin = host.value("__nvidia_driver_branch_pin")
    base_text = (ROLES / "base" / "templates" / "apt-preferences.pref.j2").read_text()
    from ansible.template import trust_as_template

    branch = host.templar.copy_with_new_env(
        available_variables={
            "ansible_managed": "Ansible managed: test",
            "base_apt_pin_name": "onprem-nvidia-driver",
            "base_apt_pin_packages": pin["packages"],
            "base_apt_pin_pin": pin["pin"],
            "base_apt_pin_priority": pin["priority"],
            "base_apt_pin_explanation": pin["explanation"],
        }
    ).template(trust_as_template(base_text))
    return {
        host.value("__nvidia_driver_cuda_repo_name") + ".pref": cuda,
        "onprem-nvidia-driver.pref": branch,
    }


def test_cuda_repo_source_takes_only_the_pinned_branch_from_nvidia() -> None:
    files = _pref_files(driver_host(nvidia_driver_source="cuda_repo", nvidia_driver_branch="550"))
    stanzas = deb822(files["onprem-nvidia-cuda.pref"])
    assert [s["Pin-Priority"] for s in stanzas] == ["990", "-1", "100"]
    assert stanzas[0]["Pin"] == "version 550.*"
    assert stanzas[1]["Pin"] == stanzas[2]["Pin"] == f"origin {CUDA}"
    offers = [("550.127.05-1", CUDA), ("560.35.03-1", CUDA), ("570.86.15-1", CUDA), ("535.309.01-0+deb12u1", DEBIAN)]
    for package in ("nvidia-kernel-dkms", "libcuda1", "nvidia-smi", "cuda-drivers-550"):
        assert candidate(files, package, offers) == ("550.127.05-1", CUDA)
    # Without the pinned branch on offer, nothing newer from NVIDIA sneaks in.
    assert candidate(files, "nvidia-smi", offers[1:3]) is None
    # The toolkit and DCGM come from NVIDIA's repository (the distribution has no such package) ...
    assert candidate(files, "cuda-toolkit-12-4", [("12.4.1-1", CUDA)]) == ("12.4.1-1", CUDA)
    # ... but never in place of a distribution package.
    assert candidate(files, "libc6", [("2.36-9", DEBIAN), ("2.99-1", CUDA)]) == ("2.36-9", DEBIAN)


def test_distribution_source_takes_no_driver_from_nvidia() -> None:
    files = _pref_files(driver_host(nvidia_driver_source="distribution", nvidia_driver_branch="535"))
    stanzas = deb822(files["onprem-nvidia-cuda.pref"])
    assert [s["Pin-Priority"] for s in stanzas] == ["-1", "100"]
    # NVIDIA's repository carries 535 builds too: a newer one must not replace Debian's.
    offers = [
        ("535.309.01-0+deb12u1", DEBIAN),
        ("535.261.03-1", DEBIAN),
        ("535.999.01-1", CUDA),
        ("550.127.05-1", CUDA),
    ]
    assert candidate(files, "nvidia-kernel-dkms", offers) == ("535.309.01-0+deb12u1", DEBIAN)
    assert candidate(files, "nvidia-smi", [("550.127.05-1", CUDA)]) is None


def test_exact_version_pins_the_older_open_module_set() -> None:
    files = _pref_files(
        driver_host(
            nvidia_driver_source="distribution", nvidia_driver_branch="535", nvidia_driver_version="535.261.03-1"
        )
    )
    offers = [("535.309.01-0+deb12u1", DEBIAN), ("535.261.03-1", DEBIAN)]
    assert candidate(files, "nvidia-smi", offers) == ("535.261.03-1", DEBIAN)


def test_container_toolkit_is_not_caught_by_the_driver_pins() -> None:
    files = _pref_files(driver_host(nvidia_driver_source="cuda_repo"))
    offers = [("1.17.4-1", "nvidia.github.io")]
    assert candidate(files, "nvidia-container-toolkit", offers) == ("1.17.4-1", "nvidia.github.io")


@pytest.mark.parametrize(
    ("source", "facts", "module", "packages"),
    [
        (
            "distribution",
            "debian12",
            "proprietary",
            ["nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced"],
        ),
        (
            "distribution",
            "debian12",
            "open",
            ["nvidia-open-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced"],
        ),
        ("distribution", "debian12", "none", ["nvidia-smi", "libcuda1", "nvidia-persistenced"]),
        ("cuda_repo", "debian12", "open", ["nvidia-kernel-open-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced"]),
        ("distribution", "ubuntu2204", "proprietary", ["nvidia-headless-550-server", "nvidia-utils-550-server"]),
        ("cuda_repo", "ubuntu2204", "open", ["nvidia-headless-550-open", "nvidia-utils-550"]),
    ],
)
def test_held_packages(source: str, facts: str, module: str, packages: list[str]) -> None:
    host = driver_host(facts=facts, nvidia_driver_source=source, nvidia_driver_kernel_module=module)
    held = host.value("__nvidia_driver_packages")
    assert held == packages
    # Everything held is also covered by the branch pin.
    globs = host.value("__nvidia_driver_pin_packages")
    assert all(any(re.fullmatch(g.replace("*", ".*"), p) for g in globs) for p in held)


def test_hold_goes_through_base_apt_pin() -> None:
    install = (ROLES / "nvidia_driver" / "tasks" / "install.yml").read_text()
    assert install.count("tasks_from: apt_pin") == 2
    assert "base_apt_pin_hold: true" in install
    assert 'base_apt_pin_packages: "{{ __nvidia_driver_packages }}"' in install


def test_unattended_upgrades_blacklist() -> None:
    host = driver_host()
    text = host.render("nvidia_driver", "unattended-upgrades.conf.j2")
    assert text.startswith("//")
    body = re.search(r"Unattended-Upgrade::Package-Blacklist \{\n(.*?)\n\};", text, re.S)
    assert body, text
    patterns = re.findall(r'^\s+"([^"]+)";$', body.group(1), re.M)
    assert patterns == host.value("nvidia_driver_unattended_upgrades_blacklist")
    # unattended-upgrades matches each entry as a regular expression against the package name.
    for package in ("nvidia-kernel-dkms", "libnvidia-ml1", "libcuda1", "cuda-drivers-550", "firmware-nvidia-gsp"):
        assert any(re.match(p, package) for p in patterns), package
    for package in ("docker.io", "linux-image-amd64", "cuda-toolkit-12-4"):
        assert not any(re.match(p, package) for p in patterns), package
    assert host.value("__nvidia_driver_unattended_file").startswith("/etc/apt/apt.conf.d/")


def test_nouveau_blacklist() -> None:
    text = driver_host().render("nvidia_driver", "blacklist-nouveau.conf.j2")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == ["blacklist nouveau", "options nouveau modeset=0"]


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")
def test_key_check_accepts_only_the_pinned_fingerprint(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "LC_ALL": "C", "PATH": "/usr/bin:/bin"}

    def gpg(*args: str) -> str:
        return subprocess.run(["gpg", "--batch", *args], env=env, check=True, capture_output=True, text=True).stdout

    def make_key(uid: str) -> str:
        gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "1d")
        fpr = re.search(r"^fpr:+([0-9A-F]{40}):", gpg("--with-colons", "--list-keys", uid), re.M)
        assert fpr
        gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", fpr.group(1), "cv25519", "encr", "1d")
        return fpr.group(1)

    first, second = make_key("repo one <one@example.invalid>"), make_key("repo two <two@example.invalid>")
    (tmp_path / "one.asc").write_text(gpg("--armor", "--export", first))
    (tmp_path / "both.asc").write_text(gpg("--armor", "--export", first, second))

    def primary_fprs(path: Path) -> list[str]:
        shown = gpg("--no-default-keyring", "--show-keys", "--with-colons", "--with-fingerprint", str(path))
        return driver_host(__nvidia_driver_apt_repo_gpg={"stdout": shown}).value("__nvidia_driver_apt_repo_key_fprs")

    # The subkey's fingerprint is not taken for the primary one.
    assert primary_fprs(tmp_path / "one.asc") == [first]
    # A file carrying an extra key is refused too: the check wants exactly [pinned].
    assert primary_fprs(tmp_path / "both.asc") == [first, second]
    tasks = (ROLES / "nvidia_driver" / "tasks" / "apt_repo.yml").read_text()
    assert "that: __nvidia_driver_apt_repo_key_fprs == [__nvidia_driver_apt_repo_fpr]" in tasks
    # The keyring apt trusts is written only after that check.
    assert tasks.index("the key is the pinned one") < tasks.index("trust the checked key")
