#include "utsushi/livemig/handshake.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>


namespace utsushi::livemig {

namespace {

const char* kind_name(ReceiverKind kind) {
  switch (kind) {
    case ReceiverKind::qmp: return "qmp";
    case ReceiverKind::libvirt: return "libvirt";
    case ReceiverKind::unknown: break;
  }
  return "unknown";
}

// The greeting's kind; an unreadable one, or a kind this version does not
// know, is unknown.
ReceiverKind announced_kind(std::span<const std::uint8_t> greeting) {
  auto j = nlohmann::json::parse(greeting.begin(), greeting.end(), nullptr, false);
  auto it = j.is_object() ? j.find("receiver") : j.end();
  std::string name = j.is_object() && it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  for (auto kind : {ReceiverKind::qmp, ReceiverKind::libvirt}) {
    if (name == kind_name(kind)) {
      return kind;
    }
  }
  return ReceiverKind::unknown;
}

}  // namespace

Bytes receiver_greeting(ReceiverKind kind) {
  std::string text = nlohmann::json{{"receiver", kind_name(kind)}}.dump();
  return Bytes(text.begin(), text.end());
}

Result<ReceiverKind> handshake_client(Link& link, std::string_view token, std::chrono::milliseconds timeout) {
  auto greeting = UTSUSHI_TRY_CTX(link::handshake_client(link, k_protocol, token, timeout), "livemig handshake");
  return announced_kind(greeting);
}

Result<void> handshake_server(Link& link, std::string_view token, std::chrono::milliseconds timeout,
                              ReceiverKind kind) {
  if (auto r = link::handshake_server(link, k_protocol, token, timeout, receiver_greeting(kind)); !r) {
    return std::unexpected(std::move(r).error().with_context("livemig handshake"));
  }
  return {};
}

Result<void> expect_receiver(Link& link, ReceiverKind want, ReceiverKind got, std::string_view to) {
  if (got == ReceiverKind::unknown || got == want) {
    return {};
  }
  std::string why =
      got == ReceiverKind::libvirt
          ? fmt::format("the receiver at {} creates libvirt domains (livemig receive --libvirt) but this sender "
                        "migrates a QEMU by its QMP socket: migrate the domain through libvirt (send --libvirt URI "
                        "--domain NAME, or evacuate --libvirt URI), or run the receiver with --qmp DEST.sock",
                        to)
          : fmt::format("the receiver at {} feeds a QEMU started with -incoming defer (livemig receive --qmp) but "
                        "this sender migrates a libvirt domain: migrate by the QMP socket (send --qmp SRC.sock, or "
                        "evacuate --guest SRC.sock=HOST:PORT), or run the receiver with --libvirt URI",
                        to);
  link.send_abort(why);
  return fail(Errc::invalid_argument, std::move(why));
}

}  // namespace utsushi::livemig
