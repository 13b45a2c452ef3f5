"""The command tree keeps the PVC v1 command, argument and option names (plus our documented extras)."""

from __future__ import annotations

import click

from pvc.cli.main import cli
from tests.cli.conftest import command_tree

# Path -> arguments (NAME, NAME... for many, NAME? when optional) and options (short/long|secondary).
EXPECTED = {
    "pvc": [
        "-c/--connection",
        "-v/--debug",
        "-q/--quiet",
        "-s/--silent",
        "-u/--unsafe",
        "--colour/--color",
        "--version",
    ],
    "pvc cluster": [],
    "pvc cluster backup": ["-f/--file"],
    "pvc cluster fault": [],
    "pvc cluster fault ack": ["FAULT_ID..."],
    "pvc cluster fault ack-all": ["-y/--yes"],
    "pvc cluster fault delete": ["FAULT_ID..."],
    "pvc cluster fault delete-all": ["-y/--yes"],
    "pvc cluster fault list": ["LIMIT?", "-f/--format"],
    "pvc cluster init": ["-o/--overwrite", "-y/--yes"],
    "pvc cluster maintenance": [],
    "pvc cluster maintenance off": [],
    "pvc cluster maintenance on": [],
    "pvc cluster restore": ["-f/--filename", "-y/--yes"],
    "pvc cluster status": ["-f/--format"],
    "pvc cluster task": ["TASK_ID?", "--wait|--no-wait", "-f/--format"],
    "pvc connection": [],
    "pvc connection add": [
        "NAME",
        "-d/--description",
        "-a/--address",
        "-p/--port",
        "-k/--api-key",
        "-s/--ssl|-S/--no-ssl",
        "--default",
    ],
    "pvc connection detail": ["-f/--format"],
    "pvc connection list": ["-k/--show-keys", "-f/--format"],
    "pvc connection remove": ["NAME"],
    "pvc network": [],
    "pvc network acl": [],
    "pvc network acl add": ["--in|--out", "-d/--description", "-r/--rule", "-o/--order", "NET"],
    "pvc network acl list": ["--in|--out", "NET", "LIMIT?", "-f/--format"],
    "pvc network acl remove": ["NET", "RULE", "-y/--yes"],
    "pvc network add": [
        "-d/--description",
        "-p/--type",
        "-m/--mtu",
        "-n/--domain",
        "--dns-server",
        "-i/--ipnet",
        "-i6/--ipnet6",
        "-g/--gateway",
        "-g6/--gateway6",
        "--dhcp|--no-dhcp",
        "--dhcp-start",
        "--dhcp-end",
        "VNI",
    ],
    "pvc network dhcp": [],
    "pvc network dhcp add": ["NET", "IPADDR", "HOSTNAME", "MACADDR"],
    "pvc network dhcp list": ["NET", "LIMIT?", "-s/--static", "-f/--format"],
    "pvc network dhcp remove": ["NET", "MACADDR", "-y/--yes"],
    "pvc network info": ["VNI", "-f/--format"],
    "pvc network list": ["LIMIT?", "-f/--format"],
    "pvc network modify": [
        "-d/--description",
        "-m/--mtu",
        "-n/--domain",
        "--dns-server",
        "-i/--ipnet",
        "-i6/--ipnet6",
        "-g/--gateway",
        "-g6/--gateway6",
        "--dhcp|--no-dhcp",
        "--dhcp-start",
        "--dhcp-end",
        "VNI",
    ],
    "pvc network remove": ["NET", "-y/--yes"],
    "pvc node": [],
    "pvc node flush": ["NODE?", "-w/--wait"],
    "pvc node info": ["NODE?", "-f/--format"],
    "pvc node is-primary": ["NODE?"],
    "pvc node list": [
        "LIMIT?",
        "-ds/--daemon-state",
        "-cs/--coordinator-state",
        "-vs/--domain-state",
        "-f/--format",
    ],
    "pvc node log": ["NODE?", "-l/--lines", "-f/--follow"],
    "pvc node primary": ["NODE?", "-w/--wait"],
    "pvc node ready": ["NODE?", "-w/--wait"],
    "pvc node secondary": ["NODE?", "-w/--wait"],
    "pvc storage": [],
    "pvc storage benchmark": [],
    "pvc storage benchmark info": ["JOB", "-f/--format"],
    "pvc storage benchmark list": ["JOB?", "-f/--format"],
    "pvc storage benchmark run": ["POOL", "--name", "--wait|--no-wait", "-y/--yes"],
    "pvc storage create-db-vg": ["NODE", "DEVICE", "--wait|--no-wait", "-y/--yes"],
    "pvc storage osd": [],
    "pvc storage osd add": [
        "NODE",
        "DEVICE",
        "-w/--weight",
        "-r/--ext-db-ratio",
        "-s/--ext-db-size",
        "-c/--osd-count",
        "--wait|--no-wait",
        "-y/--yes",
    ],
    "pvc storage osd create-db-vg": ["NODE", "DEVICE", "--wait|--no-wait", "-y/--yes"],
    "pvc storage osd in": ["OSDID"],
    "pvc storage osd list": ["LIMIT?", "-f/--format"],
    "pvc storage osd out": ["OSDID"],
    "pvc storage osd refresh": ["OSDID", "DEVICE", "--wait|--no-wait", "-y/--yes"],
    "pvc storage osd remove": ["OSDID", "-f/--force", "--wait|--no-wait", "-y/--yes"],
    "pvc storage osd replace": [
        "OSDID",
        "NEW_DEVICE",
        "-o/--old-device",
        "-w/--weight",
        "-r/--ext-db-ratio",
        "-s/--ext-db-size",
        "--wait|--no-wait",
        "-y/--yes",
    ],
    "pvc storage osd set": ["OSD_PROPERTY"],
    "pvc storage osd unset": ["OSD_PROPERTY"],
    "pvc storage pool": [],
    "pvc storage pool add": ["NAME", "PGS", "-t/--tier", "--replcfg"],
    "pvc storage pool list": ["LIMIT?", "-f/--format"],
    "pvc storage pool remove": ["NAME", "-y/--yes"],
    "pvc storage pool set-pgs": ["NAME", "PGS", "-y/--yes"],
    "pvc storage status": ["-f/--format"],
    "pvc storage util": ["-f/--format"],
    "pvc storage volume": [],
    "pvc storage volume add": ["POOL", "NAME", "SIZE", "-f/--force"],
    "pvc storage volume clone": ["POOL", "NAME", "NEW_NAME", "-f/--force"],
    "pvc storage volume list": ["LIMIT?", "-p/--pool", "-f/--format"],
    "pvc storage volume remove": ["POOL", "NAME", "-y/--yes"],
    "pvc storage volume rename": ["POOL", "NAME", "NEW_NAME", "-y/--yes"],
    "pvc storage volume resize": ["POOL", "NAME", "SIZE", "-f/--force", "-y/--yes"],
    "pvc storage volume snapshot": [],
    "pvc storage volume snapshot add": ["POOL", "VOLUME", "NAME"],
    "pvc storage volume snapshot list": ["LIMIT?", "-p/--pool", "-o/--volume", "-f/--format"],
    "pvc storage volume snapshot remove": ["POOL", "VOLUME", "NAME", "-y/--yes"],
    "pvc storage volume snapshot rename": ["POOL", "VOLUME", "NAME", "NEW_NAME"],
    "pvc storage volume snapshot rollback": ["POOL", "VOLUME", "NAME", "-y/--yes"],
    "pvc storage volume upload": ["POOL", "NAME", "IMAGE_FILE", "-f/--format"],
    "pvc vm": [],
    "pvc vm define": [
        "VMCONFIG",
        "-t/--target",
        "-l/--limit",
        "-s/--node-selector",
        "-a/--autostart|-A/--no-autostart",
        "-m/--method",
        "-d/--max-downtime",
        "-g/--tag",
        "-G/--protected-tag",
    ],
    "pvc vm disable": ["DOMAIN", "--force", "-y/--yes"],
    "pvc vm dump": ["DOMAIN", "-f/--file"],
    "pvc vm flush-locks": ["DOMAIN", "--wait|--no-wait"],
    "pvc vm info": ["DOMAIN", "-f/--format"],
    "pvc vm list": ["LIMIT?", "-t/--target", "-s/--state", "-g/--tag", "-n/--negate", "-f/--format"],
    "pvc vm log": ["DOMAIN", "-l/--lines", "-f/--follow"],
    "pvc vm memory": [],
    "pvc vm memory get": ["DOMAIN", "-f/--format"],
    "pvc vm memory set": ["DOMAIN", "MEMORY", "-r/--restart|-R/--no-restart", "-y/--yes"],
    "pvc vm meta": [
        "DOMAIN",
        "-l/--limit",
        "-s/--node-selector",
        "-a/--autostart|-A/--no-autostart",
        "-m/--method",
        "-d/--max-downtime",
        "-p/--profile",
    ],
    "pvc vm migrate": ["DOMAIN", "-t/--target", "-f/--force", "-w/--wait", "--force-live"],
    "pvc vm modify": [
        "DOMAIN",
        "CFGFILE?",
        "-e/--editor",
        "-r/--restart",
        "-d/--confirm-diff",
        "-c/--confirm-restart",
        "-y/--yes",
    ],
    "pvc vm move": ["DOMAIN", "-t/--target", "-w/--wait", "--force-live"],
    "pvc vm network": [],
    "pvc vm network add": [
        "DOMAIN",
        "NET",
        "-a/--macaddr",
        "-m/--model",
        "-s/--sriov",
        "-d/--sriov-mode",
        "-l/--live|-L/--no-live",
        "-r/--restart|-R/--no-restart",
        "-y/--yes",
    ],
    "pvc vm network get": ["DOMAIN", "-f/--format"],
    "pvc vm network remove": [
        "DOMAIN",
        "NET?",
        "-m/--mac-address",
        "-s/--sriov",
        "-l/--live|-L/--no-live",
        "-r/--restart|-R/--no-restart",
        "-y/--yes",
    ],
    "pvc vm remove": ["DOMAIN", "-y/--yes"],
    "pvc vm rename": ["DOMAIN", "NEW_NAME", "-y/--yes"],
    "pvc vm restart": ["DOMAIN", "-w/--wait", "-y/--yes"],
    "pvc vm shutdown": ["DOMAIN", "-w/--wait", "-y/--yes"],
    "pvc vm start": ["DOMAIN", "--force"],
    "pvc vm stop": ["DOMAIN", "--force", "-y/--yes"],
    "pvc vm tag": [],
    "pvc vm tag add": ["DOMAIN", "TAG", "-p/--protected"],
    "pvc vm tag get": ["DOMAIN", "-f/--format"],
    "pvc vm tag remove": ["DOMAIN", "TAG"],
    "pvc vm undefine": ["DOMAIN", "-y/--yes"],
    "pvc vm unmigrate": ["DOMAIN", "-w/--wait", "--force-live"],
    "pvc vm vcpu": [],
    "pvc vm vcpu get": ["DOMAIN", "-f/--format"],
    "pvc vm vcpu set": ["DOMAIN", "VCPUS", "-t/--topology", "-r/--restart|-R/--no-restart", "-y/--yes"],
    "pvc vm volume": [],
    "pvc vm volume add": [
        "DOMAIN",
        "VOLUME",
        "-d/--disk-id",
        "-b/--bus",
        "-t/--type",
        "-l/--live|-L/--no-live",
        "-r/--restart|-R/--no-restart",
        "-y/--yes",
    ],
    "pvc vm volume get": ["DOMAIN", "-f/--format"],
    "pvc vm volume remove": [
        "DOMAIN",
        "VOLUME",
        "-l/--live|-L/--no-live",
        "-r/--restart|-R/--no-restart",
        "-y/--yes",
    ],
}

FORMATS = {
    "pvc cluster status": (["pretty", "short", "json", "json-pretty"], "pretty"),
    "pvc cluster task": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc cluster fault list": (["short", "long", "json", "json-pretty"], "short"),
    "pvc connection detail": (["pretty", "json", "json-pretty"], "pretty"),
    "pvc connection list": (["pretty", "raw", "json", "json-pretty", "json-prometheus"], "pretty"),
    "pvc network acl list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc network dhcp list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc network info": (["pretty", "long", "json", "json-pretty"], "pretty"),
    "pvc network list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc node info": (["pretty", "long", "json", "json-pretty"], "pretty"),
    "pvc node list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc storage benchmark info": (["pretty", "json", "json-pretty"], "pretty"),
    "pvc storage benchmark list": (["pretty", "json", "json-pretty"], "pretty"),
    "pvc storage osd list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc storage pool list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc storage status": (["pretty"], "pretty"),
    "pvc storage util": (["pretty"], "pretty"),
    "pvc storage volume list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc storage volume snapshot list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc vm info": (["pretty", "long", "json", "json-pretty"], "pretty"),
    "pvc vm list": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc vm tag get": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc vm vcpu get": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc vm memory get": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc vm network get": (["pretty", "raw", "json", "json-pretty"], "pretty"),
    "pvc vm volume get": (["pretty", "raw", "json", "json-pretty"], "pretty"),
}


def _describe(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        name = (param.name or "").upper() + ("..." if param.nargs == -1 else "")
        return name if param.required else f"{name}?"
    text = "/".join(param.opts)
    return f"{text}|{'/'.join(param.secondary_opts)}" if param.secondary_opts else text


def test_tree_matches_pvc_v1() -> None:
    tree = dict(command_tree())
    assert set(tree) == set(EXPECTED)
    for path, command in tree.items():
        described = [_describe(p) for p in command.params if p.name != "help"]
        assert described == EXPECTED[path], path


def test_format_choices_and_defaults() -> None:
    tree = dict(command_tree())
    for path, (choices, default) in FORMATS.items():
        option = next(p for p in tree[path].params if p.name == "output_format")
        assert isinstance(option.type, click.Choice)
        assert list(option.type.choices) == choices, path
        assert option.default == default, path


def test_global_env_vars() -> None:
    envvars = {p.name: p.envvar for p in cli.params if isinstance(p, click.Option)}
    assert envvars["_connection"] == "PVC_CONNECTION"
    assert envvars["_debug"] == "PVC_DEBUG"
    assert envvars["_quiet"] == "PVC_QUIET"
    assert envvars["_silent"] == "PVC_SILENT"
    assert envvars["_unsafe"] == "PVC_UNSAFE"
    assert envvars["_colour"] == "PVC_COLOUR"
