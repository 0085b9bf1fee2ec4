"""The memload console patterns match whole lines only.

Regression for fixtures.memload in CI: the test waited for the prefix
"memload done verdict=" and then read "verdict=CORRUP", the console still writing the
line. These feed the patterns console text cut at every byte of a line.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from harness import memload  # noqa: E402

BEAT = "memload ok gen=2064 t=12 dirtied_mib=80 passes=13\r\n"
DONE = "memload done verdict=CORRUPT\r\n"


class WholeLines(unittest.TestCase):
    def test_a_heartbeat_matches_only_once_its_newline_is_written(self):
        for cut in range(len(BEAT) - 1):
            self.assertEqual(memload.generations(BEAT[:cut]), [], BEAT[:cut])
        self.assertEqual(memload.HEARTBEAT.findall(BEAT), [("2064", "12", "80", "13")])
        self.assertEqual(memload.generations(BEAT.replace("\r\n", "\n") * 2), [2064, 2064])

    def test_the_verdict_matches_only_once_its_newline_is_written(self):
        for cut in range(len(DONE)):
            self.assertIsNone(memload.DONE.search(DONE[:cut]), DONE[:cut])
        self.assertEqual(memload.DONE.search("boot\r\n" + DONE).group(1), "CORRUPT")
        self.assertEqual(memload.DONE.search("memload done verdict=ok\n").group(1), "ok")


if __name__ == "__main__":
    unittest.main(verbosity=2)
