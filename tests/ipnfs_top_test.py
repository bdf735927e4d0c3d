#!/usr/bin/env python3
"""tools/ipnfs-top's reading of the stats text, its rates and its units,
on stats files written in a scratch directory laid out as a mount.  The
live view itself is tested on a real mount, in a terminal
(tests/integration/top_test.cpp)."""

import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PATH = os.path.join(ROOT, "tools", "ipnfs-top")
loader = importlib.machinery.SourceFileLoader("ipnfs_top", PATH)
spec = importlib.util.spec_from_loader("ipnfs_top", loader)
top = importlib.util.module_from_spec(spec)
sys.modules["ipnfs_top"] = top  # dataclasses look their module up there
loader.exec_module(top)

TOTALS = """network lan
policy switch
ports 32
connected 2
msgs_in {msgs}
bytes_in {bytes}
msgs_out {msgs}
bytes_out {bytes}
drops 0
lossless off
pool_used 0
pool 1024
parked_readers 1
parked_senders 0
event_readers 0
capture_readers 0
captured 0
capture_drops 0
held_bytes 2048
held_limit 67108864
owner_held 0
owner_limit 0
over_limit_drops 0
stalls 0
"""
TABLE = """
port   readers writers    msgs_in     bytes_in   msgs_out    bytes_out    drops queued
1            1       0          0            0     {msgs:>6}       {bytes:>6}        0      3
2            0       1     {msgs:>6}       {bytes:>6}          0            0        0      0
"""
# What may follow the port table: the policy's lines and the extension's
# tables, here with a row of numbers only and a title row that starts with
# "port", neither of them a port.
SECTIONS = """
switch mac_entries 1 maclimit 4096 expire 300 malformed 0 vlan_drops 0 table_full 0
mac 02:00:00:00:00:01 port 2 vlan 1 age 3
policy_errors 0
7 7 7 7 7 7 7 7 7
port readers writers msgs_in bytes_in msgs_out bytes_out drops queued
9 1 1 1 1 1 1 1 1

iface   port  kind  rx_packets
tap0    3     tap   12
"""


def stats_text(msgs, size, sections=SECTIONS):
    return (TOTALS.format(msgs=msgs, bytes=msgs * size) +
            TABLE.format(msgs=msgs, bytes=msgs * size) + sections)


class ParseTest(unittest.TestCase):
    def test_totals_and_ports_and_nothing_after_the_table(self):
        st = top.parse_stats(stats_text(10, 6))
        self.assertEqual(st.totals["policy"], "switch")
        self.assertEqual(st.number("msgs_in"), 10)
        self.assertEqual(sorted(st.ports), [1, 2])
        self.assertEqual(st.ports[1].get("queued"), 3)
        self.assertEqual(st.ports[2].get("bytes_in"), 60)
        self.assertEqual(st.ports[1].get("readers"), 1)

    def test_an_empty_table_then_sections(self):
        text = TOTALS.format(msgs=0, bytes=0) + "\n" + TABLE.split("\n")[1] + "\n" + SECTIONS
        st = top.parse_stats(text)
        self.assertEqual(st.ports, {})
        self.assertEqual(st.number("held_limit"), 64 << 20)

    def test_text_cut_short_or_garbage_gives_what_parses(self):
        self.assertEqual(top.parse_stats("").ports, {})
        self.assertEqual(top.parse_stats("network x\n").totals, {"network": "x"})
        st = top.parse_stats("msgs_in many\n\nport a b\n1 2\n")
        self.assertEqual(st.number("msgs_in"), 0)
        self.assertEqual(st.ports, {})


class SamplerTest(unittest.TestCase):
    def setUp(self):
        self.mount = tempfile.mkdtemp(prefix="ipnfs-top-test.")

    def tearDown(self):
        shutil.rmtree(self.mount)

    def write(self, net, text):
        os.makedirs(os.path.join(self.mount, net), exist_ok=True)
        with open(os.path.join(self.mount, net, "stats"), "w") as f:
            f.write(text)

    def test_rates_are_deltas_over_the_time_between_reads(self):
        self.write("lan", stats_text(10, 6))
        self.write("idle", stats_text(0, 6))
        sampler = top.Sampler(self.mount, [])
        sampler.refresh()
        lan = next(v for v in sampler.views if v.name == "lan")
        self.assertIsNone(lan.rates["msgs_in"], "no rate before a second read")
        time.sleep(0.2)
        self.write("lan", stats_text(110, 6))
        sampler.refresh()
        views = {v.name: v for v in sampler.views}
        seconds = sampler.interval
        self.assertGreaterEqual(seconds, 0.2)
        self.assertAlmostEqual(views["lan"].rates["msgs_in"], 100 / seconds)
        self.assertAlmostEqual(views["lan"].rates["bytes_out"], 600 / seconds)
        self.assertEqual(views["idle"].rates["msgs_in"], 0)
        self.assertEqual(views["lan"].queued, 3)
        self.assertEqual([p.port for p in views["lan"].port_rows], [1, 2])
        self.assertAlmostEqual(views["lan"].port_rows[1].rates["msgs_in"], 100 / seconds)
        # A counter that went down: the network was made again; no rate.
        self.write("lan", stats_text(5, 6))
        sampler.refresh()
        self.assertIsNone(next(v for v in sampler.views if v.name == "lan").rates["msgs_in"])

    def test_networks_come_and_go_and_a_name_cannot_drive_the_terminal(self):
        sampler = top.Sampler(self.mount, [])
        sampler.refresh()
        self.assertEqual(sampler.views, [])
        self.write("a\x1b[2Jb", stats_text(1, 1))
        os.makedirs(os.path.join(self.mount, "notanet"))  # no stats file: not shown
        sampler.refresh()
        self.assertEqual([v.name for v in sampler.views], ["a?[2Jb"])
        shutil.rmtree(os.path.join(self.mount, "a\x1b[2Jb"))
        sampler.refresh()
        self.assertEqual(sampler.views, [])

    def test_a_missing_mount_is_an_error_not_an_exception(self):
        sampler = top.Sampler(os.path.join(self.mount, "nothing"), [])
        sampler.refresh()
        self.assertIn("No such file or directory", sampler.error)

    def test_read_stops_after_the_port_table(self):
        long_sections = "\n" + "mac 02:00:00:00:00:01 port 2 vlan 1 age 3\n" * 200000
        self.write("sw", stats_text(1, 1, long_sections))
        text = top.read_stats(os.path.join(self.mount, "sw", "stats"))
        self.assertLess(len(text), 200000)
        self.assertEqual(sorted(top.parse_stats(text).ports), [1, 2])


class UnitsAndSortTest(unittest.TestCase):
    def test_human_units(self):
        self.assertEqual(top.human_count(None), "-")
        self.assertEqual(top.human_count(0), "0")
        self.assertEqual(top.human_count(0.25), "0.25")
        self.assertEqual(top.human_count(12.54), "12.5")
        self.assertEqual(top.human_count(640), "640")
        self.assertEqual(top.human_count(1234), "1.2k")
        self.assertEqual(top.human_count(35e6), "35.0M")
        self.assertEqual(top.human_bytes(0), "0")
        self.assertEqual(top.human_bytes(512), "512B")
        self.assertEqual(top.human_bytes(1536), "1.5KiB")
        self.assertEqual(top.human_bytes(64 << 20), "64MiB")
        self.assertEqual(top.human_bytes(3 << 40), "3TiB")

    def test_sort_by_rate_then_name_and_reverse(self):
        views = [top.NetView("b", rates={"msgs_in": 5.0}), top.NetView("a", rates={"msgs_in": 5.0}),
                 top.NetView("c", rates={"msgs_in": 9.0}), top.NetView("d", error="x")]
        names = [v.name for v in top.sort_views(views, "in", False)]
        self.assertEqual(names, ["c", "a", "b", "d"])
        names = [v.name for v in top.sort_views(views, "in", True)]
        self.assertEqual(names, ["d", "a", "b", "c"])
        names = [v.name for v in top.sort_views(views, "name", True)]
        self.assertEqual(names, ["d", "c", "b", "a"])


if __name__ == "__main__":
    unittest.main()
