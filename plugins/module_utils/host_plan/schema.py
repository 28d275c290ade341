# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Structural validation of a host plan (the ``host_plan`` inventory variable).

The schema is data: a tree of small node objects. ``validate(plan)`` walks the
plan and the schema together and returns a list of error strings, each starting
with the dotted path of the offending variable (``host_plan.hardware.gpus.gpu1.
vram_gb: ...``). Unknown keys, wrong types, values out of range and references
to hardware that is not declared are all errors. Semantic checks (does the
memory budget fit, is a GPU assigned twice) live in the planning filters; this
module only decides whether the plan is well-formed enough to plan with.

``problems(plan)`` returns the same errors as ``Problem`` tuples that say
whether each one breaks the plan's shape (``blocking``) or only makes one
value unusable (a number that is not finite): the report still runs the checks
that do not read such a value. Messages quote the author's value in plain
words (``string``, ``list``, ``mapping``), cut to a readable length.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import show, type_name
from ansible_collections.onprem.gpu_server.plugins.module_utils.pci import address as pci_address

ROOT = "host_plan"

_CPU_RANGES = re.compile(r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
PRECISIONS = ("fp32", "fp16", "bf16", "fp8", "int8", "int4", "3bit", "2bit")
PROFILES = ("trading_server", "ai_workstation")
ZFS_LAYOUTS = ("stripe", "mirror", "raidz1", "raidz2", "raidz3")
DISK_KINDS = ("nvme", "sata_ssd", "sas_ssd", "sata_hdd", "sas_hdd")
CLAIM_KINDS = ("per_stream", "aggregate")
OFFLOAD = ("none", "cpu")
ENGINES = ("vllm", "tgi", "ollama", "llamacpp")
CPU_ENGINES = ("llamacpp", "ollama")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# registry/path[:tag]@sha256:<digest>: a container engine's image is pinned by its content, never by a tag alone.
_PINNED_IMAGE = re.compile(r"^[a-z0-9][a-z0-9.-]*(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+)?@sha256:[0-9a-f]{64}$")
# A path inside the models dataset: relative, no "..", no empty parts.
_MODEL_PATH = re.compile(r"^(?!/)(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$")
# What a Scalar's kind is called in a message.
_KIND_WORDS = {"str": "string", "int": "integer", "number": "number", "bool": "boolean"}


def _got(value: Any) -> str:
    return f"{type_name(value)} {show(value)}"


class Problem(NamedTuple):
    """One schema error; ``blocking`` is False when only this value is unusable, not the plan's shape."""

    path: str
    message: str
    blocking: bool = True


class Node:
    """Base schema node; ``check`` appends errors for ``value`` at ``path``."""

    required = False

    def check(self, value: Any, path: str, ctx: Context) -> None:
        raise NotImplementedError


class Context:
    """Carries the whole plan (for references) and the collected errors."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.plan = plan
        self.problems: list[Problem] = []

    @property
    def errors(self) -> list[str]:
        """Every problem as ``"path: message"``."""
        return [f"{p.path}: {p.message}" for p in self.problems]

    def error(self, path: str, message: str, blocking: bool = True) -> None:
        self.problems.append(Problem(path, message, blocking))

    def names(self, section: tuple[str, ...]) -> list[str]:
        node: Any = self.plan
        for key in section:
            if not isinstance(node, Mapping):
                return []
            node = node.get(key)
        return sorted(node) if isinstance(node, Mapping) else []


class Scalar(Node):
    """A str / int / number / bool, with optional bounds, choices or pattern."""

    def __init__(
        self,
        kind: str,
        *,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        choices: tuple[Any, ...] | None = None,
        pattern: re.Pattern[str] | None = None,
        pattern_hint: str = "",
    ) -> None:
        self.kind = kind
        self.required = required
        self.minimum = minimum
        self.maximum = maximum
        self.choices = choices
        self.pattern = pattern
        self.pattern_hint = pattern_hint

    def _type_ok(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if self.kind == "int":
            return isinstance(value, int)
        if self.kind == "number":
            return isinstance(value, (int, float))
        return isinstance(value, str)

    def check(self, value: Any, path: str, ctx: Context) -> None:
        if self.kind in ("int", "number") and isinstance(value, float) and not math.isfinite(value):
            # YAML reads .nan and .inf as numbers; every comparison with NaN is
            # false, so it would pass each bound below and poison the sums the
            # report makes. Only this value is unusable, not the plan's shape.
            ctx.error(path, f"expected a finite {_KIND_WORDS[self.kind]}, got {show(value)}", blocking=False)
            return
        if not self._type_ok(value):
            ctx.error(path, f"expected {_KIND_WORDS[self.kind]}, got {_got(value)}")
            return
        if self.choices is not None and value not in self.choices:
            ctx.error(path, f"{show(value)} is not one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            ctx.error(path, f"{show(value)} is below the minimum {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            ctx.error(path, f"{show(value)} is above the maximum {self.maximum:g}")
        if self.pattern is not None and not self.pattern.match(value):
            ctx.error(path, f"{show(value)} is not {self.pattern_hint}")


class Ref(Node):
    """A name that must exist as a key of another section of the plan."""

    def __init__(self, section: tuple[str, ...], what: str, *, required: bool = False) -> None:
        self.section = section
        self.what = what
        self.required = required

    def check(self, value: Any, path: str, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"expected the name of a {self.what}, got {_got(value)}")
            return
        known = ctx.names(self.section)
        if value not in known:
            where = ".".join((ROOT, *self.section))
            listed = ", ".join(known) if known else "none declared"
            ctx.error(path, f"{show(value)} is not a {self.what} in {where} (known: {listed})")


class ListOf(Node):
    def __init__(self, item: Node, *, required: bool = False, min_items: int = 0, unique: bool = False) -> None:
        self.item = item
        self.required = required
        self.min_items = min_items
        self.unique = unique

    def check(self, value: Any, path: str, ctx: Context) -> None:
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {_got(value)}")
            return
        if len(value) < self.min_items:
            ctx.error(path, f"needs at least {self.min_items} item(s), has {len(value)}")
        seen: set[str] = set()
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]", ctx)
            if self.unique and isinstance(item, (str, int)):
                if repr(item) in seen:
                    ctx.error(f"{path}[{index}]", f"{show(item)} is listed more than once")
                seen.add(repr(item))


class Obj(Node):
    """A mapping with a fixed set of keys."""

    def __init__(self, fields: Mapping[str, Node], *, required: bool = False) -> None:
        self.fields = dict(fields)
        self.required = required

    def check(self, value: Any, path: str, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"expected a mapping, got {_got(value)}")
            return
        for key in value:
            if key not in self.fields:
                hint = difflib.get_close_matches(str(key), list(self.fields), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                ctx.error(f"{path}.{key}", f"unknown key{suggestion}")
        for key, node in self.fields.items():
            if key in value:
                node.check(value[key], f"{path}.{key}", ctx)
            elif node.required:
                ctx.error(f"{path}.{key}", "is required")


class NamedMap(Node):
    """A mapping from user-chosen names to objects of one shape (GPUs, disks, VMs...)."""

    def __init__(self, item: Node, *, required: bool = False, min_items: int = 0) -> None:
        self.item = item
        self.required = required
        self.min_items = min_items

    def check(self, value: Any, path: str, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"expected a mapping of names, got {_got(value)}")
            return
        if len(value) < self.min_items:
            ctx.error(path, f"needs at least {self.min_items} entr(y/ies), has {len(value)}")
        for name, item in value.items():
            if not isinstance(name, str) or not _NAME.match(name):
                ctx.error(
                    f"{path}.{name}", "names must be lower-case letters, digits, '-' or '_', starting with a letter"
                )
                continue
            self.item.check(item, f"{path}.{name}", ctx)


class Keyed(Node):
    """A mapping whose shape is chosen by which discriminating key it carries."""

    def __init__(self, shapes: Mapping[str, Node], *, what: str, required: bool = False) -> None:
        self.shapes = dict(shapes)
        self.what = what
        self.required = required

    def check(self, value: Any, path: str, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"expected {self.what}, got {_got(value)}")
            return
        keys = [key for key in self.shapes if key in value]
        if len(keys) != 1:
            ctx.error(path, f"expected {self.what}: exactly one of {', '.join(self.shapes)}")
            return
        self.shapes[keys[0]].check(value, path, ctx)


class Custom(Node):
    """A value checked by a function returning an error message or None."""

    def __init__(self, func: Callable[[Any], str | None], *, required: bool = False) -> None:
        self.func = func
        self.required = required

    def check(self, value: Any, path: str, ctx: Context) -> None:
        message = self.func(value)
        if message:
            ctx.error(path, message)


def _cpu_ranges(value: Any) -> str | None:
    if not isinstance(value, str) or not _CPU_RANGES.match(value):
        return f"expected a CPU list like '0-15,32-47', got {_got(value)}"
    for part in value.split(","):
        bounds = [int(x) for x in part.split("-")]
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f"range {show(part.strip())} runs backwards"
    return None


def _pci(required: bool = False) -> Scalar:
    return Scalar("str", required=required, pattern=pci_address.SYSFS_FUNCTION_NAME,
                  pattern_hint="a PCI address like 0000:3b:00.0")


def _num(required: bool = False, minimum: float | None = 0, maximum: float | None = None) -> Scalar:
    return Scalar("number", required=required, minimum=minimum, maximum=maximum)


def _int(
    required: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Scalar:
    return Scalar("int", required=required, minimum=minimum, maximum=maximum, choices=choices)


def _str(required: bool = False, choices: tuple[Any, ...] | None = None) -> Scalar:
    return Scalar("str", required=required, choices=choices)


GPUS = ("hardware", "gpus")
DISKS = ("hardware", "disks")
NETWORKS = ("intent", "networks")
POOLS = ("intent", "zfs", "pools")

CPU = Obj(
    {
        "model": _str(required=True),
        "sockets": _int(required=True, minimum=1, maximum=8),
        "cores_per_socket": _int(required=True, minimum=1, maximum=512),
        "threads_per_core": _int(required=True, minimum=1, maximum=8),
        "base_ghz": _num(minimum=0.1, maximum=10),
        "turbo_ghz": _num(minimum=0.1, maximum=10),
        "tdp_w": _num(minimum=1, maximum=2000),
        "memory_channels_per_socket": _int(minimum=1, maximum=24),
        "pcie_lanes_per_socket": _int(minimum=1, maximum=256),
        "pcie_gen": _int(minimum=1, maximum=5),
    },
    required=True,
)

MEMORY = Obj(
    {
        "total_gb": _num(required=True, minimum=1),
        "type": _str(),
        "speed_mts": _int(minimum=1),
        "dimms": ListOf(Obj({"size_gb": _num(required=True, minimum=1), "count": _int(required=True, minimum=1)})),
        "dimms_populated": _int(minimum=0),
        "dimm_slots": _int(minimum=1),
        "max_gb": _num(minimum=1),
        "claimed_bandwidth_gbs": _num(),
    },
    required=True,
)

GPU = Obj(
    {
        "model": _str(required=True),
        "vram_gb": _num(required=True, minimum=1, maximum=1024),
        "memory_bandwidth_gbs": _num(minimum=1),
        "tdp_w": _num(minimum=1, maximum=2000),
        "pcie_gen": _int(minimum=1, maximum=5),
        "pcie_width": _int(choices=(1, 2, 4, 8, 16)),
        "riser": _int(minimum=0),
        "pci_address": _pci(required=True),
        "functions": ListOf(_pci(), unique=True),
        "numa_node": _int(minimum=0),
    }
)

DISK = Obj(
    {
        "id": _str(required=True),
        "size_bytes": _int(required=True, minimum=1),
        "kind": _str(required=True, choices=DISK_KINDS),
        "model": _str(),
        "riser": _int(minimum=0),
        "actuators": _int(minimum=1, maximum=2),
        "pcie_gen": _int(minimum=1, maximum=5),
        "pcie_width": _int(choices=(1, 2, 4, 8, 16)),
        "seq_read_mbs": _num(),
    }
)

NIC = Obj(
    {
        "model": _str(required=True),
        "speed_gbps": _num(required=True, minimum=0.01),
        "ports": _int(minimum=1, maximum=8),
        "kind": _str(),
        "pcie_gen": _int(minimum=1, maximum=5),
        "pcie_width": _int(choices=(1, 2, 4, 8, 16)),
        "rdma": Scalar("bool"),
        "driver": _str(),
    }
)

POWER = Obj(
    {
        "psus": ListOf(
            Obj({"watts": _num(required=True, minimum=1), "count": _int(required=True, minimum=1)}), min_items=1
        ),
        "psu_redundancy": Scalar("bool"),
        "efficiency": _num(minimum=0.5, maximum=1),
        "estimated_load_w": Obj({"typical_min": _num(), "typical_max": _num(), "peak": _num()}),
        "ups": Obj(
            {
                "model": _str(),
                "va": _num(minimum=1),
                "watts": _num(required=True, minimum=1),
                "surge_watts": _num(),
                # The runtime on battery at the planned load: the UPS role fits its shutdown timeline inside it.
                "runtime_minutes": _num(minimum=0.1),
            }
        ),
        "circuit": Obj({"volts": _num(required=True, minimum=1), "amps": _num(required=True, minimum=1)}),
    }
)

HARDWARE = Obj(
    {
        "chassis": _str(),
        "cpu": CPU,
        "numa_nodes": ListOf(
            Obj({"id": _int(required=True), "cpus": Custom(_cpu_ranges, required=True)}), required=True, min_items=1
        ),
        "memory": MEMORY,
        "gpus": NamedMap(GPU),
        "nvlink": Scalar("bool"),
        "disks": NamedMap(DISK),
        "nics": NamedMap(NIC),
        "power": POWER,
        "bmc": _str(),
        "remote_management": ListOf(_str()),
    },
    required=True,
)

VM_DISK = Keyed(
    {
        "tier": Obj({"tier": _str(required=True), "size_gb": _num(required=True, minimum=1)}),
        "passthrough": Obj({"passthrough": Ref(DISKS, "disk", required=True), "size_gb": _num(minimum=1)}),
        "dataset": Obj({"dataset": Ref(POOLS, "ZFS pool", required=True)}),
    },
    what="a VM disk ({tier, size_gb}, {passthrough: <disk>} or {dataset: <pool>})",
)

VM = Obj(
    {
        "vcpus": _int(required=True, minimum=1, maximum=1024),
        "cores": Custom(_cpu_ranges),
        "memory_gb": _num(required=True, minimum=0.5),
        "hugepages_gb": _int(minimum=0),
        "disks": ListOf(VM_DISK),
        "gpus": ListOf(Ref(GPUS, "GPU"), unique=True),
        "network": Ref(NETWORKS, "network"),
    }
)

# How a deployment is served (docs/llm-serving.md); a deployment without it is sized by the report only.
SERVE = Obj(
    {
        "engine": _str(required=True, choices=ENGINES),
        "source": Scalar("str", required=True, pattern=_MODEL_PATH,
                         pattern_hint="a path inside the models dataset, like llama-3.1-8b/model.gguf"),
        "sha256": Scalar("str", required=True, pattern=_SHA256, pattern_hint="64 lowercase hex digits"),
        "image": Scalar(
            "str", pattern=_PINNED_IMAGE,
            pattern_hint="an image pinned by digest, like docker.io/vllm/vllm-openai@sha256:<64 hex digits>",
        ),
        "replicas": _int(minimum=1, maximum=64),
        "port": _int(required=True, minimum=1, maximum=65535),
        "replica_port": _int(minimum=1024, maximum=65535),
        "memory_gb": _num(minimum=0.5),
        "cpu_threads": _int(minimum=1, maximum=1024),
    }
)


class _Deployment(Obj):
    """An LLM deployment: at least one GPU unless an engine that runs on the CPU serves it."""

    def check(self, value: Any, path: str, ctx: Context) -> None:
        super().check(value, path, ctx)
        if not isinstance(value, Mapping) or value.get("gpus") != []:
            return
        serve = value.get("serve")
        engine = serve.get("engine") if isinstance(serve, Mapping) else None
        if engine not in CPU_ENGINES:
            ctx.error(f"{path}.gpus", f"expected at least 1 GPU (none: only serve.engine {' or '.join(CPU_ENGINES)} "
                                      "runs on the CPU)")


LLM = _Deployment(
    {
        "model": _str(required=True),
        "params_b": _num(required=True, minimum=0.001),
        "precision": _str(required=True, choices=PRECISIONS),
        # Empty: served on the CPU (llamacpp, ollama).
        "gpus": ListOf(Ref(GPUS, "GPU"), required=True, unique=True),
        "context_tokens": _int(minimum=1),
        "concurrency": _int(minimum=1),
        "claimed_tok_s": _num(),
        "claimed_tok_s_kind": _str(choices=CLAIM_KINDS),
        "offload": _str(choices=OFFLOAD),
        "claimed_vram_gb": _num(),
        "claimed_load_s": _num(),
        "claimed_model_gb": _num(),
        "serve": SERVE,
    }
)

INTENT = Obj(
    {
        "host_reserve": Obj({"cores": _int(required=True), "memory_gb": _num(required=True)}),
        "zfs": Obj(
            {
                "arc_max_gb": _num(),
                "pools": NamedMap(
                    Obj(
                        {
                            "layout": _str(required=True, choices=ZFS_LAYOUTS),
                            "disks": ListOf(Ref(DISKS, "disk"), required=True, min_items=1, unique=True),
                            "ashift": _int(required=True, minimum=9, maximum=16),
                            "expected_usable_tb": _num(),
                            "claimed_failures_tolerated": _int(minimum=0),
                            "properties": Custom(
                                lambda v: None if isinstance(v, Mapping) else f"expected a mapping, got {_got(v)}"
                            ),
                        }
                    )
                ),
            }
        ),
        "md_arrays": NamedMap(
            Obj(
                {
                    "level": _int(required=True, choices=(0, 1, 5, 6, 10)),
                    "members": ListOf(Ref(DISKS, "disk"), required=True, min_items=2, unique=True),
                    "claimed_read_gbs": _num(),
                }
            )
        ),
        "landing_zone": Obj(
            {
                "disk": Ref(DISKS, "disk", required=True),
                "lifecycle": Obj(
                    {"hot_hours": _num(required=True, minimum=1), "warm_days": _num(required=True, minimum=1)}
                ),
            }
        ),
        "data_classes": NamedMap(
            Obj(
                {
                    "retention_years": _num(minimum=0),
                    "retention_years_min": _num(minimum=0),
                    "retention": _str(choices=("indefinite",)),
                }
            )
        ),
        "networks": NamedMap(Obj({"vlan": _int(required=True, minimum=1, maximum=4094)})),
        "network": Obj(
            {
                "tcp_buffer_max_bytes": _int(minimum=4096),
                "link_gbps": _num(minimum=0.01),
                "rtt_ms": _num(minimum=0),
                "roce": Scalar("bool"),
            }
        ),
        "hugepages_gb": _num(),
        "vms": NamedMap(VM),
        "llm_deployments": NamedMap(LLM),
    }
)

HOST_PLAN = Obj({"profile": _str(required=True, choices=PROFILES), "hardware": HARDWARE, "intent": INTENT})


def problems(plan: Any) -> list[Problem]:
    """Every schema error of ``plan`` in plan order, each saying whether it breaks the plan's shape."""
    ctx = Context(plan if isinstance(plan, Mapping) else {})
    HOST_PLAN.check(plan, ROOT, ctx)
    return ctx.problems


def validate(plan: Any) -> list[str]:
    """Return the structural errors of ``plan``; an empty list means well-formed."""
    return [f"{p.path}: {p.message}" for p in problems(plan)]
