"""The serial-console helper returns exactly a command's output, whatever surrounds it.

Regression for fixtures.boot_uefi, where a prompt printed late ("# ") was returned with
the output. These feed parse_console_output console streams as a serial line delivers
them: echoed input, prompts before, inside and after the output, carriage returns,
continuation prompts, and markers of other commands.
"""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from harness.console import console_command, console_output_regex, parse_console_output  # noqa: E402
from harness.qemu import Machine, SerialPipe  # noqa: E402


def shell_output(command, n, body, status, before="", after=""):
    """What the console shows for command n: the typed line echoed (as a getty with echo
    on shows it), then the markers the shell prints around `body`."""
    typed = console_command(command, n).replace("\n", "\r\n> ", 1)
    return (before + typed + f"\r\n@UTSUSHI-BEGIN-{n}@\r\n" + body.replace("\n", "\r\n")
            + f"\r\n@UTSUSHI-END-{n}={status}@\r\n" + after)


class ConsoleOutput(unittest.TestCase):
    def test_prompt_before_output_is_not_output(self):
        text = shell_output("sha256sum f | cut -c1-8", 3, "1fe3ff39\n", 0, before="# ")
        self.assertEqual(parse_console_output(text, 3), (0, "1fe3ff39"))

    def test_prompt_between_markers_of_an_earlier_command(self):
        first = shell_output("true", 1, "", 0, after="# ")
        second = shell_output("hostname", 2, "utsushi-phys\n", 0, after="# ")
        self.assertEqual(parse_console_output(first + second, 2), (0, "utsushi-phys"))
        self.assertEqual(parse_console_output(first + second, 1), (0, ""))

    def test_echoed_command_line_never_matches(self):
        # Echo of the typed line alone (command still running): no output yet.
        typed = console_command("sleep 5", 7)
        with self.assertRaises(ValueError):
            parse_console_output("# " + typed.replace("\n", "\r\n"), 7)

    def test_output_without_trailing_newline_and_status(self):
        text = shell_output("printf abc; false", 4, "abc", 1)
        self.assertEqual(parse_console_output(text, 4), (1, "abc"))

    def test_multiline_output_keeps_inner_lines(self):
        text = shell_output("ls", 5, "a\n# not a prompt\nb\n", 0, before="# # ")
        self.assertEqual(parse_console_output(text, 5), (0, "a\n# not a prompt\nb"))

    def test_incomplete_output_is_refused(self):
        text = shell_output("cat big", 6, "line1\nline2\n", 0)
        cut = text[: text.index("@UTSUSHI-END-6")]
        with self.assertRaises(ValueError):
            parse_console_output(cut, 6)

    def test_command_number_is_exact(self):
        text = shell_output("echo x", 11, "x\n", 0) + shell_output("echo y", 1, "y\n", 0)
        self.assertEqual(parse_console_output(text, 1), (0, "y"))
        self.assertEqual(parse_console_output(text, 11), (0, "x"))


class WaitingForOutput(unittest.TestCase):
    """Machine.run() waits with console_output_regex before parsing: that wait must see
    multi-line output as complete (the regex's flags kept), or every command with output
    would time out."""

    def test_wait_sees_output_spanning_lines(self):
        m = Machine("unit-console")
        try:
            with open(m.serial_log, "w") as f:
                f.write("# " + shell_output("hostname; uname -r", 2, "utsushi-lvm\n6.1.0\n", 0, after="# "))
            match = m.wait_for(console_output_regex(2), 5)
            self.assertEqual(parse_console_output(m.serial_text()[match.start():], 2), (0, "utsushi-lvm\n6.1.0"))
        finally:
            m.stop()


class SerialPipeCopiesEveryByteOnce(unittest.TestCase):
    """What QEMU writes to PATH.out reaches the log once, even when the copy starts late and
    the writer has filled much of the pipe; what the test types comes out of PATH.in."""

    def test_log_and_input(self):
        with tempfile.TemporaryDirectory() as d:
            path, log = os.path.join(d, "serial"), os.path.join(d, "serial.log")
            pipe = SerialPipe(path, log)
            try:
                qemu_out = os.open(path + ".out", os.O_WRONLY)
                stream = b"".join(b"line %05d xfs.ko\r\n" % i for i in range(3000))  # about 60 KiB
                for i in range(0, len(stream), 4096):
                    os.write(qemu_out, stream[i:i + 4096])
                os.close(qemu_out)
                pipe.write(b"hostname\n")
                qemu_in = os.open(path + ".in", os.O_RDONLY | os.O_NONBLOCK)
                self.assertEqual(os.read(qemu_in, 100), b"hostname\n")
                os.close(qemu_in)
            finally:
                pipe.close()
            with open(log, "rb") as f:
                self.assertEqual(f.read(), stream)


if __name__ == "__main__":
    unittest.main(verbosity=2)
