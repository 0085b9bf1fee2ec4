#include "utsushi/livemig/qmp.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cerrno>
#include <cstring>

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

namespace {

// The longest message a monitor may send. QEMU's largest replies (query-block
// with long chains, query-qmp-schema) stay well under it; a monitor that sends
// more without a newline is not a QMP monitor.
constexpr std::size_t k_max_message_bytes = 16u << 20;

std::int64_t integer_member(const json& object, const char* key) {
  if (!object.is_object()) {
    return 0;
  }
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

}  // namespace

Result<QmpClient> QmpClient::connect(const std::string& path, milliseconds timeout) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return fail(Errc::invalid_argument, fmt::format("QMP socket path too long: {}", path));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  QmpClient c;
  c.m_path = path;
  c.m_timeout = timeout;
  c.m_fd = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!c.m_fd) {
    return fail_errno(errno, "QMP: socket");
  }
  if (::connect(c.m_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return fail(Errc::unavailable, fmt::format("cannot connect to QMP socket {}: {}", path, std::strerror(errno)),
                errno);
  }
  auto greeting = UTSUSHI_TRY_CTX(c.read_message(timeout), "QMP " + path);
  if (!greeting.contains("QMP")) {
    return fail(Errc::corruption, fmt::format("{} is not a QMP socket (no greeting)", path));
  }
  UTSUSHI_TRY_CTX(c.execute("qmp_capabilities"), "QMP " + path);
  return c;
}

Result<void> QmpClient::send_line(const std::string& line, int pass_fd) {
  std::size_t done = 0;
  while (done < line.size()) {
    iovec iov{const_cast<char*>(line.data() + done), line.size() - done};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0 && done == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    ssize_t w = ::sendmsg(m_fd.get(), &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(Errc::unavailable, fmt::format("QMP {}: send failed: {}", m_path, std::strerror(errno)), errno);
    }
    done += static_cast<std::size_t>(w);
  }
  return {};
}

Result<json> QmpClient::read_message(milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    auto nl = m_buf.find('\n');
    if (nl != std::string::npos) {
      std::string line = m_buf.substr(0, nl);
      m_buf.erase(0, nl + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) {
        continue;
      }
      json msg = json::parse(line, nullptr, false);
      if (msg.is_discarded() || !msg.is_object()) {
        return fail(Errc::corruption, fmt::format("QMP {}: unparsable message", m_path));
      }
      return msg;
    }
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      return fail(Errc::unavailable, fmt::format("QMP {}: no answer within {} ms", m_path, timeout.count()));
    }
    pollfd p{m_fd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno != EINTR) {
      return fail_errno(errno, "QMP poll");
    }
    if (r <= 0) {
      continue;
    }
    if (m_buf.size() > k_max_message_bytes) {
      return fail(Errc::corruption,
                  fmt::format("QMP {}: a message longer than {} MiB", m_path, k_max_message_bytes >> 20));
    }
    char chunk[8192];
    ssize_t n = ::recv(m_fd.get(), chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      // sys_errno marks the monitor as gone (monitor_gone()).
      return fail(Errc::unavailable, fmt::format("QMP {}: connection closed (QEMU exited?)", m_path),
                  n < 0 ? errno : ECONNRESET);
    }
    m_buf.append(chunk, static_cast<std::size_t>(n));
  }
}

void QmpClient::record_event(const json& msg) {
  QmpEvent e;
  const json& name = msg["event"];
  e.name = name.is_string() ? name.get<std::string>() : std::string();
  e.data = msg.contains("data") && msg["data"].is_object() ? msg["data"] : json::object();
  if (msg.contains("timestamp")) {
    const json& ts = msg["timestamp"];
    e.timestamp_us = integer_member(ts, "seconds") * 1000000 + integer_member(ts, "microseconds");
  }
  m_events.push_back(std::move(e));
  if (m_events.size() > 1000) {
    m_events.pop_front();
  }
}

Result<json> QmpClient::execute(const std::string& command, const json& arguments, int pass_fd) {
  std::uint64_t id = m_next_id++;
  json req = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) {
    req["arguments"] = arguments;
  }
  UTSUSHI_TRY(send_line(req.dump() + "\n", pass_fd));
  for (;;) {
    auto msg = UTSUSHI_TRY(read_message(m_timeout));
    if (msg.contains("event")) {
      record_event(msg);
      continue;
    }
    if (!msg.contains("id") || msg["id"] != id) {
      continue;
    }
    if (msg.contains("error")) {
      const json& error = msg["error"];
      const json* desc = error.is_object() && error.contains("desc") ? &error["desc"] : nullptr;
      return fail(Errc::failed_precondition,
                  fmt::format("QMP {} failed: {}", command,
                              desc != nullptr && desc->is_string() ? desc->get<std::string>() : "unknown error"));
    }
    return msg.contains("return") ? msg["return"] : json::object();
  }
}

Result<void> QmpClient::poll_events() {
  for (;;) {
    pollfd p{m_fd.get(), POLLIN, 0};
    if (m_buf.find('\n') == std::string::npos && ::poll(&p, 1, 0) <= 0) {
      return {};
    }
    auto msg = UTSUSHI_TRY(read_message(milliseconds(1000)));
    if (msg.contains("event")) {
      record_event(msg);
    }
  }
}

Result<QmpEvent> QmpClient::wait_event(const std::string& name, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    for (const auto& e : m_events) {
      if (e.name == name) {
        return e;
      }
    }
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) {
      return fail(Errc::unavailable, fmt::format("QMP {}: no {} event within {} ms", m_path, name, timeout.count()));
    }
    auto msg = read_message(left);
    if (!msg) {
      if (msg.error().code() == Errc::unavailable && steady_clock::now() >= deadline) {
        continue;
      }
      return std::unexpected(msg.error());
    }
    if (msg->contains("event")) {
      record_event(*msg);
    }
  }
}

std::optional<QmpEvent> QmpClient::last_event(const std::string& name) const {
  for (auto it = m_events.rbegin(); it != m_events.rend(); ++it) {
    if (it->name == name) {
      return *it;
    }
  }
  return std::nullopt;
}

}  // namespace utsushi::livemig
