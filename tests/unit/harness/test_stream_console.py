"""SerialShell through a StreamConsole attached after the getty printed its prompt: login()
presses Enter until a prompt shows, retries a username the getty lost, and run() returns
exactly the output and status of commands run by a real shell behind a UNIX socket."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from harness.console import ConsoleError, SocketConsole  # noqa: E402

# The shell's own stty/dmesg/kill would act on this host (kill -s RTMIN+21 1 reaches PID 1).
NEUTERED = "stty() { :; }; dmesg() { :; }; kill() { :; }\n"


def fake_getty(conn, lose_first_username, after_prompt=b""):
    """Silent until Enter; then a getty's dialogue; then a real sh reading the connection.
    `after_prompt` is printed right after the shell's prompt, as the kernel's console
    messages are when a driver loads while the shell starts."""
    f = conn.makefile("rwb", buffering=0)
    f.readline()                                    # the Enter that makes a getty re-prompt
    f.write(b"\r\nguest login: ")
    if lose_first_username:
        f.readline()                                # typed while the terminal was set up
        f.write(b"\r\nguest login: ")
    f.readline()
    f.write(b"Password: ")
    if f.readline().strip() != b"secret":
        return                                      # hangs up: the console closes
    f.write(b"\r\nroot@guest:~# " + after_prompt)
    shell = subprocess.Popen(["sh"], stdin=subprocess.PIPE, stdout=conn.fileno(), stderr=subprocess.STDOUT)
    shell.stdin.write(NEUTERED.encode())
    shell.stdin.flush()
    for line in f:
        shell.stdin.write(line.replace(b"\r", b"\n"))
        shell.stdin.flush()
    shell.stdin.close()
    shell.wait()


class LateConsole(unittest.TestCase):
    def serve(self, lose_first_username, after_prompt=b""):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "console.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)

        def accept():
            conn, _ = server.accept()
            try:
                fake_getty(conn, lose_first_username, after_prompt)
            finally:
                conn.close()
        threading.Thread(target=accept, daemon=True).start()
        self.addCleanup(server.close)
        return path

    def test_login_and_run(self):
        with SocketConsole(self.serve(lose_first_username=False)) as con:
            con.login(password="secret", timeout=60)
            self.assertEqual(con.run("echo one; echo two >&2"), (0, "one\ntwo"))
            self.assertEqual(con.run("printf '# not a prompt\\n'; exit_code=3; (exit $exit_code)"),
                             (3, "# not a prompt"))

    def test_lost_username_is_typed_again(self):
        with SocketConsole(self.serve(lose_first_username=True)) as con:
            con.password_prompt_timeout = 3
            con.login(password="secret", timeout=60)
            self.assertEqual(con.run("echo ok"), (0, "ok"))

    def test_kernel_messages_after_the_prompt(self):
        # fixtures.boot_born_virtual once timed out: the prompt was not the console's last text.
        kernel = b"[   24.136929] kvm: Nested Virtualization enabled\r\n[   24.458460] powernow_k8: x\r\n\r\n"
        with SocketConsole(self.serve(lose_first_username=False, after_prompt=kernel)) as con:
            con.login(password="secret", timeout=60)
            self.assertEqual(con.run("echo ok"), (0, "ok"))

    def test_closed_console_is_an_error_not_a_timeout(self):
        with SocketConsole(self.serve(lose_first_username=False)) as con:
            with self.assertRaisesRegex(ConsoleError, "the console closed"):
                con.login(password="wrong", timeout=60)


if __name__ == "__main__":
    unittest.main(verbosity=2)
