#include "utsushi/common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "utsushi/common/cancel.h"
#include "utsushi/common/fd.h"

namespace utsushi {
namespace {

// Reaps the child, killing its group first if it is still running.
struct ChildGuard {
  pid_t pid = -1;
  int status = 0;
  bool reaped = false;
  ~ChildGuard() {
    if (pid > 0 && !reaped) {
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
};

}  // namespace

bool program_exists(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    return ::access(program.c_str(), X_OK) == 0;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) {
      return true;
    }
  }
  return false;
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) {
    return fail(Errc::invalid_argument, "run_process: empty command");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return fail_errno(errno, "pipe");
  }
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);

  std::vector<char*> cargv;
  for (const auto& a : argv) {
    cargv.push_back(const_cast<char*>(a.c_str()));
  }
  cargv.push_back(nullptr);

  ChildGuard child;
  child.pid = ::fork();
  if (child.pid < 0) {
    return fail_errno(errno, "fork for '" + argv[0] + "'");
  }
  if (child.pid == 0) {
    ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(write_end.get(), STDOUT_FILENO);
    ::dup2(write_end.get(), STDERR_FILENO);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(cargv[0], cargv.data());
    std::string msg = "cannot run '" + argv[0] + "': " + std::strerror(errno) + "\n";
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  ::setpgid(child.pid, child.pid);
  write_end = Fd();

  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[65536];
  bool eof = false;
  while (!eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    if (cancel_requested()) {
      break;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 250)));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "poll on output of '" + argv[0] + "'");
    }
    if (n == 0) {
      continue;
    }
    ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "read output of '" + argv[0] + "'");
    }
    if (got == 0) {
      eof = true;
      break;
    }
    result.output.append(buf, static_cast<std::size_t>(got));
    if (result.output.size() > options.max_output) {
      result.output.erase(0, result.output.size() - options.max_output);
    }
    if (options.stop_marker && result.output.find(*options.stop_marker) != std::string::npos) {
      result.marker_seen = true;
      break;
    }
  }
  if (!eof) {
    ::kill(-child.pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(child.pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno(errno, "waitpid for '" + argv[0] + "'");
    }
  }
  child.reaped = true;
  if (!eof) {
    ::kill(-child.pid, SIGKILL);  // grandchildren still holding the pipe
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  UTSUSHI_TRY(check_cancelled());
  return result;
}

}  // namespace utsushi
